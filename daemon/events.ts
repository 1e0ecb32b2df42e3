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
  'monitor.tamper',
  'monitor.degraded',
] as const;
export type Category = (typeof CATEGORIES)[number];

export const EVENT_TYPES = ['exec', 'fork', 'exit', 'signal', 'setsid', 'reparent'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

interface EventBase {
  time: number;
  /** the acting process (tgid) */
  pid: number;
  tid?: number;
  /** kernel comm at the time of the event, when the sensor knows it */
  comm?: string;
}

export interface ExecEvent extends EventBase {
  type: 'exec';
  filename: string;
}

export interface ForkEvent extends EventBase {
  type: 'fork';
  child_pid: number;
}

export interface ExitEvent extends EventBase {
  type: 'exit';
}

export type SignalSyscall = 'kill' | 'tkill' | 'tgkill' | 'pidfd_send_signal';

export interface SignalEvent extends EventBase {
  type: 'signal';
  syscall: SignalSyscall;
  /** the raw target argument: a pid, 0 (own group), -1 (everything), -N (group N); for pidfd_send_signal the pid behind the fd, when resolved */
  target_pid: number;
  sig: number;
  pidfd?: number;
  /** set when a pidfd could not be mapped to a pid (the sender closed it or exited first) */
  target_unresolved?: boolean;
}

export interface SetsidEvent extends EventBase {
  type: 'setsid';
}

/** a process whose parent exited and that now has another parent */
export interface ReparentEvent extends EventBase {
  type: 'reparent';
  old_ppid: number;
  new_ppid: number;
}

export type SensorEvent = ExecEvent | ForkEvent | ExitEvent | SignalEvent | SetsidEvent | ReparentEvent;

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
