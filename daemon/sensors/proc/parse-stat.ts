// Pure parsers for /proc/PID/stat, /proc/PID/status and /proc/PID/cgroup text.

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** clock ticks since boot (field 22) */
  starttime: number;
}

/** comm may hold spaces and parentheses, so split at the last ')' */
export function parseStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).trim().split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3]
  const state = rest[0];
  const ppid = Number(rest[1]);
  const pgid = Number(rest[2]);
  const sid = Number(rest[3]);
  const starttime = Number(rest[19]);
  if (!Number.isInteger(pid) || state === undefined || ![ppid, pgid, sid, starttime].every(Number.isInteger)) return null;
  return { pid, comm: text.slice(open + 1, close), state, ppid, pgid, sid, starttime };
}

/** NUL-separated argv; an empty cmdline (kernel thread or zombie) gives [] */
export function parseCmdline(text: string): string[] {
  if (text === '') return [];
  const parts = text.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export interface ProcStatus {
  tgid: number;
  uid: number;
  /** its pid in each pid namespace it is in, the host's first, its own last (NSpid) */
  nspids: number[];
  /** a SIGSTOP is queued (ShdPnd or SigPnd): it runs no user code again before it stops */
  stopPending: boolean;
}

/** SIGSTOP (19) in a /proc status signal mask: bit 18 of the hex */
function hasStop(mask: string | undefined): boolean {
  return mask !== undefined && (Number.parseInt(mask.slice(-8), 16) & (1 << 18)) !== 0;
}

export function parseStatus(text: string): ProcStatus | null {
  const tgid = /^Tgid:\s*(\d+)/m.exec(text);
  const uid = /^Uid:\s*(\d+)/m.exec(text);
  if (!tgid || !uid) return null;
  const ns = /^NSpid:\s*([\d\s]+)$/m.exec(text);
  const nspids = ns ? (ns[1] as string).trim().split(/\s+/).map(Number) : [Number(tgid[1])];
  const stopPending = hasStop(/^ShdPnd:\s*([0-9a-f]+)/m.exec(text)?.[1]) || hasStop(/^SigPnd:\s*([0-9a-f]+)/m.exec(text)?.[1]);
  return { tgid: Number(tgid[1]), uid: Number(uid[1]), nspids, stopPending };
}

/** the cgroup v2 path ("0::/a/b") of a /proc/PID/cgroup file, or null on a v1-only host */
export function parseCgroupV2(text: string): string | null {
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) return line.slice(3);
  }
  return null;
}

/** the v1 path of one controller ("7:freezer:/a") */
export function parseCgroupV1(text: string, controller: string): string | null {
  for (const line of text.split('\n')) {
    const [, ctrls, path] = line.split(':');
    if (ctrls !== undefined && path !== undefined && ctrls.split(',').includes(controller)) return path;
  }
  return null;
}
