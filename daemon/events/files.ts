// Events about files: opens and links (raw, named by the ingress), bytes moved through large
// files and sockets, changes to files, a filesystem filled, and the scan accounting's feeds.
import type { EventBase } from './base.js';

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

