// Thin /proc readers. A pid can vanish between any two reads: every reader returns null then.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { type ProcStat, parseCmdline, parseStat, parseStatus, type ProcStatus } from './parse-stat.js';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function readStat(pid: number): ProcStat | null {
  const t = read(`/proc/${pid}/stat`);
  return t === null ? null : parseStat(t);
}

export function readCmdline(pid: number): string[] | null {
  const t = read(`/proc/${pid}/cmdline`);
  return t === null ? null : parseCmdline(t);
}

export function readStatus(pid: number): ProcStatus | null {
  const t = read(`/proc/${pid}/status`);
  return t === null ? null : parseStatus(t);
}

/** the real uid (the owner of /proc/PID is root for a process that changed credentials); -1 when gone */
export function realUid(pid: number): number {
  return readStatus(pid)?.uid ?? -1;
}

/** the process exists and has not exited (a zombie waiting to be reaped has) */
export function isRunning(pid: number): boolean {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

export function readCgroupFile(pid: number): string | null {
  return read(`/proc/${pid}/cgroup`);
}

export function listPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57) out.push(Number(name));
  }
  return out;
}

/** the inode of the pid namespace process `pid` (or this process) is in; null when it is gone */
export function pidnsOf(pid: number | 'self'): number | null {
  try {
    const m = /^pid:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/pid`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * The host pid of the process that is `nsPid` inside the pid namespace `pidns` (a process of
 * that namespace itself; one in a namespace nested in it is not looked for). A scan of /proc:
 * for the rare signal sent inside a container whose target the table does not know.
 */
export function hostPidIn(pidns: number, nsPid: number): number | null {
  for (const pid of listPids()) {
    if (pidnsOf(pid) !== pidns) continue;
    if (readStatus(pid)?.nspids.at(-1) === nsPid) return pid;
  }
  return null;
}
