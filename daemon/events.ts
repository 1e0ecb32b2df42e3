// The event union every sensor produces, discriminated by `type` (the families are in
// events/: files, net-weights, monitor). Times are epoch milliseconds (fractional allowed);
// pids are host pids.
import type { EventBase } from './events/base.js';
import type { DiskFillEvent, EnospcEvent, FileBytesEvent, FileChangeEvent, LinkEvent, ListingEvent, OpenEvent, ProcReadEvent, ScanEvent } from './events/files.js';
import type { AttemptEvent, SensorTroubleEvent, SurvivorEvent, VanishedEvent } from './events/monitor.js';
import type { ConnectEvent, GpuEvent, ListenCloseEvent, ListenEvent, ProbeEvent, WeightsCopyEvent, WeightsLoadEvent, WeightsOpenEvent, WeightsWithdrawnEvent } from './events/net-weights.js';

export type { EventBase } from './events/base.js';
export * from './events/files.js';
export * from './events/monitor.js';
export * from './events/net-weights.js';

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
  // a derived copy reported in progress turned out to be a plain copy (its content matched)
  'weights_withdrawn',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

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
  | WeightsWithdrawnEvent
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
