// Events about listeners, connections and probes, the weights (opened, copied, loaded) and
// the GPU's memory.
import type { EventBase } from './base.js';

/**
 * A socket of a subject process listens: TCP listen() or a UDP bind() traced by eBPF, or
 * found by the /proc/net poll (listeners older than redline, or that eBPF did not attribute).
 * The address is filled in from the process's own /proc/PID/net.
 */
export interface ListenEvent extends EventBase {
  type: 'listen';
  fd: number;
  seen_by: 'listen' | 'bind' | 'poll';
  proto?: string;
  addr?: string;
  port?: number;
  /** the socket's inode (as /proc/PID/fd names it) */
  inode?: number;
  /** bound to a loopback address only */
  loopback?: boolean;
}

/** a listener the poll had reported (or eBPF had) is gone */
export interface ListenCloseEvent extends EventBase {
  type: 'listen_close';
  proto: string;
  addr: string;
  port: number;
  inode: number;
}

/** a subject process connects a socket to an IPv4/IPv6 address */
export interface ConnectEvent extends EventBase {
  type: 'connect';
  fd: number;
  family: 4 | 6;
  addr: string;
  port: number;
  loopback: boolean;
}

/** what the daemon's probe of a subject's listening port got back */
export interface ProbeEvent extends EventBase {
  type: 'probe';
  port: number;
  path: string;
  status: number;
  answered: boolean;
  inference: boolean;
  excerpt: string;
  /** probed from inside the listener's own network namespace (not the daemon's) */
  netns?: true;
  latency_ms?: number;
  /** why no answer came (refused, timed out) */
  error?: string;
  /** the model its /v1/models names */
  model?: string;
  /**
   * (an answer like an inference API's) its answer to the canary prompt against the allowed
   * original's: same (it answers like the protected model), different, or unknown (no original
   * answered, or the listener gave no text)
   */
  functional?: 'same' | 'different' | 'unknown';
  /** the listener's canary text (null: none came), and the original's */
  canary?: string | null;
  original_canary?: string | null;
  /** the original's port that gave the reference answer */
  original_port?: number;
  /** the canary request's time, and why it gave no text */
  canary_ms?: number;
  canary_error?: string;
}

interface WeightsBase extends EventBase {
  /** the file the process touched or made */
  path: string;
  /** the registered weight file it is (or was copied from) */
  weight: string;
  /** 0 for the original weights, n for a copy of a copy … */
  generation: number;
}

/** a process opened the registered weights or a copy of them */
export interface WeightsOpenEvent extends WeightsBase {
  type: 'weights_open';
  write: boolean;
}

/** derived: not the bytes themselves, but as many as were read, written by the reader (compressed, encrypted, encoded, sent) */
export type CopyMatch = 'full' | 'partial' | 'hardlink' | 'symlink' | 'archive' | 'derived';

/** a file whose content is the weights (or the start of them), made by `pid` */
export interface WeightsCopyEvent extends WeightsBase {
  type: 'weights_copy';
  match: CopyMatch;
  /** bytes of the candidate when it matched */
  bytes: number;
  /** where in the candidate the weight bytes start (archives) */
  offset: number;
  /** how the copy was seen: 'ebpf' (the writer is known), 'watch' (a folder watcher), 'poll' (found when read or mapped; its writer not known) */
  seen_by: 'ebpf' | 'watch' | 'poll';
  /** the writer is not the subject's (a host service copying the weights) */
  outside_subject?: boolean;
  /** derived copies: bytes of the weights the writer read */
  read_bytes?: number;
  /** derived copies: the writer read the weights through a pipe, from this pid (`tar cz` → gzip) */
  piped_from?: number;
  /** derived copies sent on a socket: where to */
  dest_addr?: string;
  dest_port?: number;
  loopback?: boolean;
  /** a derived copy reported before its writer had read the share: unconfirmed (the share read later confirms it) */
  in_progress?: boolean;
  /** the derived copy reported in progress before, now confirmed (the same writer, destination and weights) */
  confirmed?: boolean;
}

/** a derived copy reported in progress was a plain copy after all: its content matched (the copy's own event names it) */
export interface WeightsWithdrawnEvent extends WeightsBase {
  type: 'weights_withdrawn';
  reason: 'content-match';
}

/**
 * A process mapped or read at least the configured share of a model (its registered files in
 * one folder, shards summed), counted in bytes by the kernel whatever the read path.
 */
export interface WeightsLoadEvent extends WeightsBase {
  type: 'weights_load';
  /** mapped, read in order, read at positions (pread/preadv, as io_uring and O_DIRECT loaders do), or more than one */
  how: 'mmap' | 'read' | 'pread' | 'mixed';
  /** bytes of the model mapped or read */
  bytes: number;
  /** of the model's registered bytes, 0–1 */
  share: number;
  /** the process is not the subject's (started for it by a host service, say): a replica wherever it runs */
  outside_subject?: boolean;
  /** outside the subject: a file the subject wrote that names what the replica runs (its job) */
  job_file?: string;
  /** the longest of the replica's telling arguments (paths, words), all of which the job file names */
  job_arg?: string;
  /**
   * outside the subject: what ties it to the trial — the subject's job file, a command a
   * subject process ran that names it, or only that it loaded the weights during the trial
   */
  tie?: 'job_file' | 'command' | 'time';
  /** with tie `command`: the subject process whose command line names the replica's */
  tie_pid?: number;
}

/**
 * GPU memory a process holds, from nvidia-smi: emitted when a pid first appears on a GPU
 * and whenever its usage changes by at least the sensor's threshold.
 */
export interface GpuEvent extends EventBase {
  type: 'gpu';
  gpu_uuid: string;
  /** MiB this process holds on that GPU */
  used_mib: number;
  /** MiB it held at the previous report (0 when new) */
  previous_mib: number;
  /** the GPU's total memory, MiB, when known */
  total_mib?: number;
  /** MiB this process holds on all GPUs together (a sharded server spans several) */
  footprint_mib: number;
  /** the largest footprint among the allowed pids now on a GPU (0: none is) */
  allowed_mib: number;
  /** not an allowed pid, and its footprint is at least the configured share of allowed_mib (> 0) */
  replica_like: boolean;
  /** the driver would not say how much memory (`[N/A]`, e.g. under MIG): used_mib is 0 then */
  used_unknown?: boolean;
}

