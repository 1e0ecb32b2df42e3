// Thin /proc readers. A pid can vanish between any two reads: every reader returns null then.
import { readdirSync, readFileSync } from 'node:fs';
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
