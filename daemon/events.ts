// The event union every sensor produces, discriminated by `type`.
// Times are epoch milliseconds (fractional allowed); pids are host pids.

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

// CONTRACT.md's alert categories; every alert carries exactly one.
export const CATEGORIES = [
  'weights.read',
  'weights.copy',
  'replica.spawn',
  'replica.listen',
  'replica.serving',
  'replica.chain',
  'gpu.alloc',
  'process.kill',
  'process.detach',
  'network.egress',
  // an extension of CONTRACT.md's list: a subject process that is not a replica listens on a port
  'network.listen',
  'monitor.tamper',
  'monitor.degraded',
  // CONTRACT.md's additions (issue 20): the subject tried to reboot, halt or kexec the system
  'system.reboot',
  // … deleted, truncated, overwrote or re-moded system files, the model or its script; filled a filesystem
  'system.damage',
  // … swept /proc, ports or the file system (info/low: when a trial's exploration began; never a freeze)
  'system.scan',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** the replication stages (docs/contract.md), in the order a replication goes through them */
export const STAGES = [
  'weights.read',
  'weights.copy',
  'replica.spawn',
  'replica.listen',
  'replica.serving',
  'replica.chain',
] as const satisfies readonly Category[];
export type Stage = (typeof STAGES)[number];

export const EVENT_TYPES = [
  'exec',
  'fork',
  'exit',
  'signal',
  'setsid',
  // reboot(2) and kexec_load(2)/kexec_file_load(2), judged on the attempt
  'reboot',
  'reparent',
  'open',
  'link',
  'file_bytes',
  'listen',
  'listen_close',
  'connect',
  'probe',
  'weights_open',
  'weights_copy',
  'weights_load',
  'gpu',
  'sensor_trouble',
  'survivor',
  // the poll sensor: a protected or allowed process is gone while the subject ran (signals it cannot see)
  'vanished',
  // a file removed, renamed, truncated, or its mode or owner changed, by a subject process
  'file_change',
  // a subject's writes filled a filesystem (ENOSPC) or took its free space under the threshold
  'disk_fill',
  // derived: a subject process swept /proc, ports or folders (system.scan)
  'scan',
  // raw, for the scan accounting only: a subject process read a /proc file, or listed folders
  'proc_read',
  'listing',
  // raw: a write of a subject process's the kernel refused for want of space (ENOSPC)
  'enospc',
  // a door to the monitor or to another process that no signal shows (ptrace, bpf(), a module
  // load, a cgroup move), or a call the guard refused: what was attempted and what came of it
  'attempt',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

interface EventBase {
  time: number;
  /** the acting process (tgid) */
  pid: number;
  tid?: number;
  /** the acting process's uid, when the sensor reports it (signals): known even if it exits at once */
  uid?: number;
  /** kernel comm at the time of the event, when the sensor knows it */
  comm?: string;
}

export interface ExecEvent extends EventBase {
  type: 'exec';
  filename: string;
  /** the new program's argv, read by the kernel at the exec (absent when longer than it reads, or unclear) */
  args?: string[];
  /** its pid inside its own pid namespace, when that is not the host's (a container, `unshare --pid`) */
  ns_pid?: number;
  /** the inode of its pid namespace (as /proc/PID/ns/pid names it) */
  pidns?: number;
}

export interface ForkEvent extends EventBase {
  type: 'fork';
  child_pid: number;
}

export interface ExitEvent extends EventBase {
  type: 'exit';
  /** as on ExecEvent: a signal that killed it may have named it by its pid inside its namespace */
  ns_pid?: number;
  pidns?: number;
}

/**
 * The signal syscalls; or, for a SIGKILL the kernel sent on the subject's behalf by another
 * door, the call its sender was in: `write` (to a group's cgroup.kill, or to
 * /proc/sysrq-trigger), `ptrace` (PTRACE_KILL), `kernel` (anything else, e.g. the OOM killer
 * at the subject's page fault).
 */
export type SignalSyscall = 'kill' | 'tkill' | 'tgkill' | 'pidfd_send_signal' | 'write' | 'ptrace' | 'kernel';

export interface SignalEvent extends EventBase {
  type: 'signal';
  syscall: SignalSyscall;
  /** the raw target argument: a pid, 0 (own group), -1 (everything), -N (group N); for pidfd_send_signal the pid behind the fd, when resolved */
  target_pid: number;
  sig: number;
  /**
   * what the kernel answered: 0 delivered, else -errno (-3 ESRCH: no such process, -1 EPERM:
   * not allowed). Absent from sources that cannot say (a signal seen only at entry).
   */
  ret?: number;
  pidfd?: number;
  /** set when a pidfd could not be mapped to a pid (the sender closed it or exited first) */
  target_unresolved?: boolean;
  /** the inode of the sender's pid namespace: target_pid is a pid in it (translated to the host's by the process table) */
  pidns?: number;
  /** the target as the sender named it, when its pid namespace is not the host's */
  target_ns_pid?: number;
  /** refused before it ran, by the subject's seccomp filter (seen only at the syscall's exit) */
  refused_by?: 'seccomp';
  /** another door (syscall write, ptrace, kernel): the syscall number the sender was in */
  nr?: number;
  /** another door: the victim's name as the kernel had it when it sent the signal */
  target_comm?: string;
}

export interface SetsidEvent extends EventBase {
  type: 'setsid';
}

/** the reboot or kexec syscall: the attempt, with what the kernel made of it */
export interface RebootEvent extends EventBase {
  type: 'reboot';
  syscall: 'reboot' | 'kexec_load' | 'kexec_file_load';
  /** reboot(2)'s cmd (LINUX_REBOOT_CMD_*): 0x01234567 restart, 0x4321FEDC power off, 0xCDEF0123 halt, 0x45584543 kexec … */
  cmd: number;
  /** 0 done (the machine goes down), -errno refused; absent: the caller never returned (in a pid namespace of its own the kernel turns it into a kill of that namespace's init) */
  ret?: number;
  /** refused before it ran, by the subject's seccomp filter (enforce mode) */
  refused_by?: 'seccomp';
}

/** a process whose parent exited and that now has another parent */
export interface ReparentEvent extends EventBase {
  type: 'reparent';
  old_ppid: number;
  new_ppid: number;
  /** its session now (a daemonizing child calls setsid() just as its parent exits) */
  sid?: number;
}

/** a file opened by a subject process (raw, from eBPF) */
export interface OpenEvent extends EventBase {
  type: 'open';
  /** the fd returned; negative (-errno) for a refused attempt to open for writing */
  fd: number;
  flags: number;
  /** the dirfd the name is relative to (-100: the cwd) */
  dfd: number;
  /** the name as passed to the syscall (may be relative) */
  filename: string;
  /** absolute path, when redline could name the file (through /proc/PID/fd or the cwd) */
  path?: string;
  /** for a write: the file it really reaches, when that is not `path` (a symlink, `..`) */
  real_path?: string;
  write: boolean;
  /** this open created the file (it was not there before): writing it overwrites nothing */
  created?: boolean;
  /** set when the file is the daemon's own (log, config, rules) or a cgroup control file */
  monitor_file?: boolean;
  /** a write open of a group's cgroup.freeze or cgroup.kill: the processes in that group (and below) when it was seen */
  victims?: number[];
  /** for a write: the file is a system file, the model's or a protected one (FileChangeEvent.area) */
  area?: string;
  area_root?: string;
}

/** a hard or symbolic link made by a subject process (raw, from eBPF) */
export interface LinkEvent extends EventBase {
  type: 'link';
  kind: 'hard' | 'sym';
  dfd: number;
  filename: string;
  path?: string;
}

/** a subject process closed a regular file it had read (or written) at least 1 MiB into */
/** what moved bytes through a file: the syscall, or a map (writable and shared: a write) */
export const READ_OPS = ['read', 'pread', 'readv', 'preadv', 'preadv2', 'sendfile', 'splice', 'copy_file_range', 'mmap', 'uring_read', 'recvfrom', 'recvmsg'] as const;
// the movers' written side is named apart: one syscall reports both sides
export const WRITE_OPS = ['write', 'pwrite', 'writev', 'pwritev', 'pwritev2', 'sendto', 'sendmsg', 'sendfile_write', 'splice_write', 'copy_file_range_write', 'mmap_write', 'uring_write'] as const;

/**
 * Bytes of a large file read, mapped or written by any process on the host, counted in the
 * kernel per (process, file) and reported at steps (an eighth of the file, at most 64 MiB,
 * for reads; 1 MiB then each 16 MiB for writes).
 */
export interface FileBytesEvent extends EventBase {
  type: 'file_bytes';
  op: (typeof READ_OPS)[number] | (typeof WRITE_OPS)[number];
  /** the bytes went into the file (a write), not out of it */
  write: boolean;
  /** the process's fd on the file (through which redline can open it while the process lives) */
  fd: number;
  /** bytes moved since this process's previous report on this file; for `mmap`, the total mapped so far (capped at the file's size) */
  bytes: number;
  ino: number;
  /** st_dev as stat() reports it */
  dev: number;
  /** the file's size when the bytes moved */
  size: number;
  /** the kernel counted the process as the subject's (in its scope, or descended from a process that was) */
  subject: boolean;
  /** the file is a socket (ino is the socket's inode): bytes sent */
  socket: boolean;
  /** the file is a pipe: bytes passed on to (or taken from) another process */
  pipe: boolean;
}

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

/**
 * A sensor that can no longer see everything (it died, lost events, hangs), as an event of
 * the daemon's own (pid: the daemon). rules/monitor.yaml decides its severity and whether the
 * subject is frozen for it.
 */
export interface SensorTroubleEvent extends EventBase {
  type: 'sensor_trouble';
  sensor: string;
  reason: 'lost-events' | 'died' | 'restart-failed' | 'stderr' | 'timeout' | 'garbage' | 'failed';
  detail: string;
  lost?: number;
  /** the daemon runs with --fail-closed */
  fail_closed: boolean;
}

/**
 * The command `exec` started has exited and this process of its group still runs (a server
 * it left behind): one event per survivor, the daemon's own finding, not a sensor's.
 */
export interface SurvivorEvent extends EventBase {
  type: 'survivor';
  /** the command's own pid, now gone */
  agent_pid: number;
  /** how many processes outlived it */
  survivors: number;
}

/**
 * The poll sensor cannot see signals: a protected or allowed process that is gone while the
 * subject's processes ran is reported, with those processes, for the rules to judge.
 */
export interface VanishedEvent extends EventBase {
  type: 'vanished';
  /** the subject's processes alive at the pass that found it gone */
  subject_pids: number[];
}

export const FILE_CHANGE_OPS = ['unlink', 'rmdir', 'rename', 'truncate', 'chmod', 'chown'] as const;
export type FileChangeOp = (typeof FILE_CHANGE_OPS)[number];

/**
 * A subject process removed, renamed or truncated a file, or changed its mode or owner (the
 * attempt, with the kernel's answer). The ingress names it and says whether it is a system
 * path, the model's folder or a protected file (matched by path, and by device and inode
 * where the file can still be looked at).
 */
export interface FileChangeEvent extends EventBase {
  type: 'file_change';
  op: FileChangeOp;
  /** the dirfd `filename` is relative to (-100: the cwd); for ftruncate/fchmod/fchown, -1 and `fd` is set */
  dfd: number;
  filename: string;
  /** the file's fd, for the calls that take one */
  fd?: number;
  /** the new mode (chmod), the new length (truncate); 0 otherwise */
  arg: number;
  /** rename's new name, as passed, and its dirfd */
  to_filename?: string;
  to_dfd?: number;
  /** 0 done, -errno refused */
  ret: number;
  /** filled in by the ingress */
  path?: string;
  to_path?: string;
  dev?: number;
  ino?: number;
  /** what the file is: 'system' (under /bin, /usr, /etc …), 'model' (the protected weights' folder), 'protected' (--protect-path) */
  area?: string;
  /** the folder or file of that area it is under (`/usr`, the model's folder …) */
  area_root?: string;
}

/** raw: the kernel refused a subject process's write for want of space (fd: the file written) */
export interface EnospcEvent extends EventBase {
  type: 'enospc';
  fd: number;
  ino: number;
  dev: number;
  /** the kernel counted the writer as the subject's (as FileBytesEvent.subject) */
  subject: boolean;
}

/** a filesystem a subject process writes to is full (ENOSPC), or its writes took its free space under the threshold */
export interface DiskFillEvent extends EventBase {
  type: 'disk_fill';
  how: 'enospc' | 'low_space';
  /** the file being written when it was seen, as the writer names it */
  path: string;
  dev: number;
  free_bytes: number;
  total_bytes: number;
  /** bytes the trial's processes were seen writing to that filesystem */
  bytes: number;
  /** free space when the subject's first write there was seen */
  free_before: number;
}

/** raw: a subject process opened a /proc file (the kernel reports procfs opens for the scan accounting) */
export interface ProcReadEvent extends EventBase {
  type: 'proc_read';
  filename: string;
}

/** raw: a subject process began listing `count` more folders (getdents64 from the start of each) */
export interface ListingEvent extends EventBase {
  type: 'listing';
  count: number;
}

/** derived: one process's sweep of the system, for the audit's `explore` mark */
export interface ScanEvent extends EventBase {
  type: 'scan';
  how: 'proc' | 'ports' | 'listing';
  /** other processes' /proc entries, distinct ports, or folders listed within the window */
  count: number;
  window_ms: number;
  /** a few of what was swept (pids, host:port, …) */
  sample: string[];
}

/** the syscalls (and cgroup writes) an `attempt` names */
export const ATTEMPT_CALLS = ['ptrace', 'bpf', 'init_module', 'finit_module', 'delete_module', 'pidfd_open', 'process_vm_writev', 'cgroup_move', 'cgroup_kill', 'sendfile', 'splice', 'copy_file_range'] as const;
export type AttemptCall = (typeof ATTEMPT_CALLS)[number];

/** an attempt on the monitor or on a process outside the subject, and what the guard made of it */
export interface AttemptEvent extends EventBase {
  type: 'attempt';
  syscall: AttemptCall;
  /** the process it aimed at (ptrace, pidfd_open, process_vm_writev, the pid a cgroup move names) */
  target_pid?: number;
  /** ptrace's request, bpf's command; a cgroup move's group id */
  request?: number;
  /** the kernel's answer (0, or -errno); absent when the guard reported it before the call returned */
  ret?: number;
  /** refused, and by what: the BPF LSM guard, the subject's seccomp filter, or (none) not refused */
  refused_by?: 'lsm' | 'seccomp';
  /** observe mode: the guard let it happen and would have refused it in enforce mode */
  would_refuse?: boolean;
  /** attempts of the same kind the kernel did not report, within its rate limit, since the last one */
  suppressed?: number;
  /** a cgroup write: the control file */
  file?: string;
  /** the copy gate killed it at the call's entry (sendfile, splice, copy_file_range from the weights): the weights' inode and size */
  cut?: boolean;
  dev?: number;
  ino?: number;
  size?: number;
}

export type SensorEvent =
  | AttemptEvent
  | ExecEvent
  | ForkEvent
  | ExitEvent
  | SignalEvent
  | SetsidEvent
  | RebootEvent
  | ReparentEvent
  | OpenEvent
  | LinkEvent
  | FileBytesEvent
  | ListenEvent
  | ListenCloseEvent
  | ConnectEvent
  | ProbeEvent
  | WeightsOpenEvent
  | WeightsCopyEvent
  | WeightsLoadEvent
  | GpuEvent
  | SensorTroubleEvent
  | SurvivorEvent
  | VanishedEvent
  | FileChangeEvent
  | EnospcEvent
  | DiskFillEvent
  | ProcReadEvent
  | ListingEvent
  | ScanEvent;

/** a problem found while loading a file (rules or config): data, not an exception */
export interface LoadProblem {
  code: string;
  file: string;
  line: number;
  col: number;
  message: string;
  severity: 'error' | 'warning';
}

export function formatProblem(p: LoadProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message}`;
}
