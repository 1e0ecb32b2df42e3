// Pure parser for `bpftrace -f json -B line` output produced by script.ts.
import { type AttemptCall, type AttemptEvent, type ExecEvent, type SignalSyscall, type ExitEvent, FILE_CHANGE_OPS, type FileBytesEvent, type FileChangeEvent, type OpenEvent, READ_OPS, type RebootEvent, type SensorEvent, WRITE_OPS } from '../../events.js';
import { isLoopback } from '../ports/parse-net.js';
import { ARGV_MAX, READY, REBOOT_SYSCALLS, SIGNAL_NO_RESULT, SIGNAL_SYSCALLS } from './script.js';

export type BpftraceLine =
  | { kind: 'attached'; probes: number }
  /** the loader's copy gate stopped a reader of the weights at its first MiB written */
  | { kind: 'held'; time: number; pid: number; tid: number; fd: number; ino: number; dev: number }
  | { kind: 'ready' }
  | { kind: 'event'; event: SensorEvent }
  /** a new program's argv, for the exec line of the same thread and time (null: read /proc) */
  | { kind: 'argv'; tid: number; time: number; args: string[] | null }
  /** a rename's new name, for the change line of the same thread and time */
  | { kind: 'newname'; tid: number; time: number; dfd: number; name: string }
  | { kind: 'lost'; count: number }
  /** the echo of the daemon's ping: the sensor read every line before this one */
  | { kind: 'pong'; time: number }
  | { kind: 'error'; message: string }
  | { kind: 'ignored' };

/** converts bpftrace's monotonic nanoseconds to epoch milliseconds */
export type Clock = (monotonicNs: bigint) => number;

const OPS: ReadonlySet<string> = new Set([...READ_OPS, ...WRITE_OPS]);
const WRITES: ReadonlySet<string> = new Set(WRITE_OPS);

function int(s: string | undefined): number | null {
  if (s === undefined || !/^-?\d+$/.test(s)) return null;
  return Number(s);
}

function ns(s: string | undefined): bigint | null {
  if (s === undefined || !/^\d+$/.test(s)) return null;
  return BigInt(s);
}

/** the kernel's dev_t (major << 20 | minor) as stat() encodes it for userspace */
export function userDev(kdev: number): number {
  const major = Math.floor(kdev / 2 ** 20);
  const minor = kdev % 2 ** 20;
  return (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
}

/** one printf payload (without the JSON envelope) → event, or an error saying what was wrong */
export function parsePayload(payload: string, clock: Clock): BpftraceLine {
  const text = payload.endsWith('\n') ? payload.slice(0, -1) : payload;
  const f = text.split('\t');
  const t = ns(f[1]);
  const pid = int(f[2]);
  const tid = int(f[3]);
  if (t === null || pid === null || tid === null) return { kind: 'error', message: `malformed event line: ${JSON.stringify(text)}` };
  const time = clock(t);
  switch (f[0]) {
    case 'P':
      return { kind: 'pong', time };
    case 'F': {
      const child = int(f[4]);
      if (child === null) break;
      return { kind: 'event', event: { type: 'fork', time, pid, tid, child_pid: child, comm: f.slice(5).join('\t') } };
    }
    case 'X': {
      const nsPid = int(f[4]);
      const pidns = int(f[5]);
      if (f.length < 8 || nsPid === null || pidns === null) break;
      const ev: ExecEvent = { type: 'exec', time, pid, tid, comm: f[6], filename: f.slice(7).join('\t'), pidns };
      if (nsPid !== pid) ev.ns_pid = nsPid;
      return { kind: 'event', event: ev };
    }
    case 'A': {
      // the argv of the exec line that follows (same thread, same time)
      const len = int(f[4]);
      if (f.length !== 6 || len === null) break;
      return { kind: 'argv', tid, time, args: argvOf(f[5] as string, len) };
    }
    case 'E': {
      const nsPid = int(f[4]);
      const pidns = int(f[5]);
      if (f.length < 7 || nsPid === null || pidns === null) break;
      const ev: ExitEvent = { type: 'exit', time, pid, tid, comm: f.slice(6).join('\t'), pidns };
      if (nsPid !== pid) ev.ns_pid = nsPid;
      return { kind: 'event', event: ev };
    }
    case 'D':
      return { kind: 'event', event: { type: 'setsid', time, pid, tid, comm: f.slice(4).join('\t') } };
    case 'R': {
      const syscall = REBOOT_SYSCALLS[int(f[4]) ?? -1];
      const cmd = int(f[5]);
      const ret = int(f[6]);
      if (syscall === undefined || cmd === null || ret === null || f.length < 8) break;
      // reboot's cmd is an unsigned int: read back as one
      const ev: RebootEvent = { type: 'reboot', time, pid, tid, syscall, cmd: cmd >>> 0, comm: f.slice(7).join('\t') };
      if (ret !== SIGNAL_NO_RESULT) ev.ret = ret;
      return { kind: 'event', event: ev };
    }
    case 'O': {
      const fd = int(f[4]);
      const flags = int(f[5]);
      const dfd = int(f[6]);
      if (fd === null || flags === null || dfd === null || (f[7] !== '0' && f[7] !== '1') || f.length < 10) break;
      // O_WRONLY | O_RDWR | O_CREAT | O_TRUNC
      const write = (flags & 0o3) !== 0 || (flags & 0o1100) !== 0;
      const ev: OpenEvent = { type: 'open', time, pid, tid, fd, flags, dfd, write, comm: f[8], filename: f.slice(9).join('\t') };
      if (f[7] === '1') ev.created = true;
      return { kind: 'event', event: ev };
    }
    case 'L': {
      const kind = f[4];
      const dfd = int(f[5]);
      if ((kind !== 'hard' && kind !== 'sym') || dfd === null || f.length < 8) break;
      return { kind: 'event', event: { type: 'link', time, pid, tid, kind, dfd, comm: f[6], filename: f.slice(7).join('\t') } };
    }
    case 'Y': {
      const op = f[4] ?? '';
      const fd = int(f[5]);
      const bytes = int(f[6]);
      const ino = int(f[7]);
      const kdev = int(f[8]);
      const size = int(f[9]);
      const subj = f[10];
      const sock = f[11];
      const write = WRITES.has(op);
      if (!OPS.has(op) || fd === null || bytes === null || ino === null || kdev === null || size === null || (subj !== '0' && subj !== '1') || (sock !== '0' && sock !== '1' && sock !== '2')) break;
      const ev: FileBytesEvent = { type: 'file_bytes', time, pid, tid, op: op as FileBytesEvent['op'], write, fd, bytes, ino, dev: userDev(kdev), size, subject: subj === '1', socket: sock === '1', pipe: sock === '2', comm: f.slice(12).join('\t') };
      return { kind: 'event', event: ev };
    }
    case 'U': {
      const op = FILE_CHANGE_OPS[int(f[4]) ?? -1];
      const dfd = int(f[5]);
      const fd = int(f[6]);
      const arg = int(f[7]);
      const ret = int(f[8]);
      if (op === undefined || dfd === null || fd === null || arg === null || ret === null || f.length < 11) break;
      const ev: FileChangeEvent = { type: 'file_change', time, pid, tid, op, dfd, filename: f.slice(10).join('\t'), arg, ret, comm: f[9] };
      if (fd >= 0) ev.fd = fd;
      return { kind: 'event', event: ev };
    }
    case 'W': {
      const dfd = int(f[4]);
      if (dfd === null || f.length < 6) break;
      return { kind: 'newname', tid, time, dfd, name: f.slice(5).join('\t') };
    }
    case 'Q':
      if (f.length < 6) break;
      return { kind: 'event', event: { type: 'proc_read', time, pid, tid, comm: f[4], filename: f.slice(5).join('\t') } };
    case 'G': {
      const count = int(f[4]);
      if (count === null || f.length < 6) break;
      return { kind: 'event', event: { type: 'listing', time, pid, tid, count, comm: f.slice(5).join('\t') } };
    }
    case 'T': {
      // the loader's sys_exit: a ptrace, bpf() or module load of the subject's, or a pid call
      // (a signal included) its seccomp filter refused
      const [nr, ret, a0, a1, a2] = [f[4], f[5], f[6], f[7], f[8]].map(int);
      if (nr === null || ret === null || a0 === null || a1 === null || a2 === null || nr === undefined || ret === undefined || a0 === undefined || a1 === undefined || a2 === undefined || f.length < 10) break;
      const comm = f.slice(9).join('\t');
      const sig = REFUSED_SIGNALS[nr];
      if (sig) return { kind: 'event', event: { type: 'signal', time, pid, tid, syscall: sig.syscall, target_pid: a0 | 0, sig: sig.sigArg === 1 ? a1 : a2, ret, refused_by: 'seccomp', comm, ...(sig.syscall === 'pidfd_send_signal' ? { pidfd: a0 } : {}) } };
      const reboot = REFUSED_REBOOTS[nr];
      if (reboot) return { kind: 'event', event: { type: 'reboot', time, pid, tid, syscall: reboot, cmd: reboot === 'reboot' ? a2 >>> 0 : 0, ret, refused_by: 'seccomp', comm } };
      const ev = attemptOf(nr, ret, a0, a1);
      if (!ev) break;
      return { kind: 'event', event: { type: 'attempt', time, pid, tid, ...ev, comm } };
    }
    case 'Z': {
      // the file a write was refused on for want of space (the pipeline keeps the subject's)
      const fd = int(f[4]);
      const ino = int(f[5]);
      const kdev = int(f[6]);
      if (fd === null || ino === null || kdev === null || (f[7] !== '0' && f[7] !== '1') || f.length < 9) break;
      return { kind: 'event', event: { type: 'enospc', time, pid, tid, fd, ino, dev: userDev(kdev), subject: f[7] === '1', comm: f.slice(8).join('\t') } };
    }
    case 'N':
    case 'B': {
      const fd = int(f[4]);
      const family = f[5] === '4' ? 4 : f[5] === '6' ? 6 : null;
      const protocol = f[6] === '6' ? 'tcp' : f[6] === '17' ? 'udp' : null;
      const port = int(f[7]);
      const inode = int(f[8]);
      const addr = f[9];
      if (fd === null || family === null || protocol === null || port === null || inode === null || !addr) break;
      const proto = family === 6 ? `${protocol}6` : protocol;
      return {
        kind: 'event',
        event: { type: 'listen', time, pid, tid, fd, seen_by: f[0] === 'N' ? 'listen' : 'bind', proto, addr, port, inode, loopback: isLoopback(addr), comm: f.slice(10).join('\t') },
      };
    }
    case 'C': {
      const fd = int(f[4]);
      const family = f[5] === '4' ? 4 : f[5] === '6' ? 6 : null;
      const port = int(f[6]);
      const addr = f[7];
      if (fd === null || family === null || port === null || !addr) break;
      return { kind: 'event', event: { type: 'connect', time, pid, tid, fd, family, port, addr, loopback: isLoopback(addr), comm: f.slice(8).join('\t') } };
    }
    case 'S': {
      const kind = int(f[4]);
      const syscall = kind === null ? undefined : SIGNAL_SYSCALLS[kind]?.[0];
      const target = int(f[5]);
      const sig = int(f[6]);
      const uid = int(f[7]);
      const ret = int(f[8]);
      const pidns = int(f[9]);
      if (syscall === undefined || target === null || sig === null || uid === null || ret === null || pidns === null || f.length < 11) break;
      // the syscall's result: 0 delivered, -errno refused (ESRCH: no such process, EPERM: not
      // allowed); a caller that died inside the syscall sent it (its own signal killed it)
      const result = ret === SIGNAL_NO_RESULT ? 0 : ret;
      const base = { type: 'signal' as const, time, pid, tid, uid, syscall, sig, ret: result, pidns, comm: f.slice(10).join('\t') };
      if (syscall === 'pidfd_send_signal') return { kind: 'event', event: { ...base, target_pid: 0, pidfd: target, target_unresolved: true } };
      return { kind: 'event', event: { ...base, target_pid: target } };
    }
    case 'V': {
      // a SIGKILL sent by another door than the signal syscalls (script.ts doorKillProbes);
      // the kernel named the victim as it sent it
      const target = int(f[4]);
      const sig = int(f[5]);
      const nr = int(f[6]);
      if (target === null || sig === null || nr === null || int(f[7]) === null || f.length < 10) break;
      return { kind: 'event', event: { type: 'signal', time, pid, tid, syscall: doorOf(nr), nr, target_pid: target, sig, ret: 0, target_comm: f[8] as string, comm: f.slice(9).join('\t') } };
    }
  }
  return { kind: 'error', message: `malformed event line: ${JSON.stringify(text)}` };
}

/** write, pwrite64, writev, pwritev, pwritev2 (x86_64): a write to cgroup.kill, or to /proc/sysrq-trigger */
const WRITE_NRS = [1, 18, 20, 296, 328];
const PTRACE_NR = 101;

/** the door a SIGKILL went out by, from the syscall its sender was in */
function doorOf(nr: number): SignalSyscall {
  if (WRITE_NRS.includes(nr)) return 'write';
  return nr === PTRACE_NR ? 'ptrace' : 'kernel';
}

/**
 * The argv bpftrace printed with %r (bytes outside printable ASCII as \\xNN, the NULs between
 * arguments among them), when it is all of it: `len` is the kernel's length of the argument
 * area. null when it was cut at ARGV_MAX, unreadable, or unclear (an argument holding a
 * literal backslash-x sequence decodes short): the caller reads /proc instead.
 */
export function argvOf(text: string, len: number): string[] | null {
  if (len <= 0 || len > ARGV_MAX) return null;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c && text[i + 1] === 'x' && i + 3 < text.length) {
      const v = Number.parseInt(text.slice(i + 2, i + 4), 16);
      if (!Number.isNaN(v)) {
        bytes.push(v);
        i += 3;
        continue;
      }
    }
    bytes.push(c);
  }
  if (bytes.length !== len || bytes[0] === 0 || bytes[len - 1] !== 0) return null;
  return Buffer.from(bytes.slice(0, -1)).toString('utf8').split('\0');
}

/** one line of bpftrace's JSON output */
export function parseLine(line: string, clock: Clock): BpftraceLine {
  const trimmed = line.trim();
  if (trimmed === '') return { kind: 'ignored' };
  let msg: unknown;
  try {
    msg = JSON.parse(trimmed);
  } catch {
    // bpftrace prints some notices as plain text even in JSON mode
    const lost = /^Lost (\d+) events/.exec(trimmed);
    if (lost) return { kind: 'lost', count: Number(lost[1]) };
    return { kind: 'error', message: trimmed };
  }
  if (typeof msg !== 'object' || msg === null) return { kind: 'error', message: trimmed };
  const { type, data } = msg as { type?: unknown; data?: unknown };
  switch (type) {
    case 'attached_probes': {
      const probes = (data as { probes?: unknown } | null)?.probes;
      return { kind: 'attached', probes: typeof probes === 'number' ? probes : 0 };
    }
    case 'printf':
      if (typeof data !== 'string') return { kind: 'error', message: trimmed };
      if (data === `${READY}\n`) return { kind: 'ready' };
      return parsePayload(data, clock);
    case 'lost_events': {
      const n = typeof data === 'number' ? data : (data as { events?: unknown } | null)?.events;
      return { kind: 'lost', count: typeof n === 'number' ? n : 0 };
    }
    default:
      return { kind: 'ignored' };
  }
}

/** one line of the libbpf loader's output: plain text, the payload lines of the bpftrace program */
export function parseLoaderLine(line: string, clock: Clock): BpftraceLine {
  if (line === READY) return { kind: 'ready' };
  const lost = /^Lost (\d+) events$/.exec(line);
  if (lost) return { kind: 'lost', count: Number(lost[1]) };
  if (line === '') return { kind: 'ignored' };
  if (line.startsWith('C\t')) {
    // the copy gate killed a subject process starting to move the weights in one call
    const f = line.split('\t');
    const [pid, tid, nr, fd, ino, kdev, size] = [f[2], f[3], f[4], f[5], f[6], f[7], f[8]].map((x) => (x !== undefined && /^-?\d+$/.test(x) ? Number(x) : null));
    const syscall = ({ 40: 'sendfile', 275: 'splice', 326: 'copy_file_range' } as const)[nr as 40];
    if (f.length < 10 || !/^\d+$/.test(f[1] ?? '') || pid == null || tid == null || !syscall || fd == null || ino == null || kdev == null || size == null) return { kind: 'error', message: `malformed gate line: ${JSON.stringify(line)}` };
    return { kind: 'event', event: { type: 'attempt', time: clock(BigInt(f[1] as string)), pid, tid, syscall, request: fd, cut: true, dev: userDev(kdev), ino, size, comm: f.slice(9).join('\t') } };
  }
  if (line.startsWith('H\t')) {
    const f = line.split('\t');
    const [t, pid, tid, fd, ino, kdev] = [f[1], f[2], f[3], f[4], f[5], f[6]].map((x) => (x !== undefined && /^-?\d+$/.test(x) ? Number(x) : null));
    if (f.length !== 7 || t === null || t === undefined || pid == null || tid == null || fd == null || ino == null || kdev == null) return { kind: 'error', message: `malformed gate line: ${JSON.stringify(line)}` };
    return { kind: 'held', time: clock(BigInt(f[1] as string)), pid, tid, fd, ino, dev: userDev(kdev) };
  }
  return parsePayload(line, clock);
}

/** the signal syscalls of `T` lines (x86_64 numbers), and which argument is the signal */
const REFUSED_SIGNALS: Record<number, { syscall: SignalSyscall; sigArg: 1 | 2 }> = {
  62: { syscall: 'kill', sigArg: 1 }, 200: { syscall: 'tkill', sigArg: 1 }, 234: { syscall: 'tgkill', sigArg: 2 },
  129: { syscall: 'kill', sigArg: 1 }, 297: { syscall: 'tgkill', sigArg: 2 }, 424: { syscall: 'pidfd_send_signal', sigArg: 1 },
};

/** the reboot syscalls of `T` lines (refused by the seccomp filter in enforce mode) */
const REFUSED_REBOOTS: Record<number, RebootEvent['syscall']> = { 169: 'reboot', 246: 'kexec_load', 320: 'kexec_file_load' };

/** x86_64 syscall numbers of the `T` lines */
const ATTEMPT_NR: Record<number, AttemptCall> = { 101: 'ptrace', 321: 'bpf', 175: 'init_module', 313: 'finit_module', 176: 'delete_module', 434: 'pidfd_open', 311: 'process_vm_writev' };

/** a `T` line's call, its target and request */
export function attemptOf(nr: number, ret: number, a0: number, a1: number): Pick<AttemptEvent, 'syscall' | 'target_pid' | 'request' | 'ret'> | null {
  const syscall = ATTEMPT_NR[nr];
  if (!syscall) return null;
  const out: Pick<AttemptEvent, 'syscall' | 'target_pid' | 'request' | 'ret'> = { syscall, ret };
  if (syscall === 'ptrace') {
    out.request = a0;
    out.target_pid = a1 | 0;
  } else if (syscall === 'bpf') out.request = a0;
  else if (syscall === 'pidfd_open' || syscall === 'process_vm_writev') out.target_pid = a0 | 0;
  return out;
}
