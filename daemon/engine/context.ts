// What a rule condition sees: `evt`, `proc` (who acted), `target` and `targets` (whom a
// signal reaches), typed for CEL so unknown fields fail at load time, not per event.
import { Environment } from '@marcbachmann/cel-js';
import { signalName } from '../signals.js';
import { ancestorsOf, type Enriched, type ProcInfo } from '../process.js';

export const PROCESS_FIELDS = {
  pid: 'int',
  ppid: 'int',
  pgid: 'int',
  sid: 'int',
  uid: 'int',
  start: 'int',
  key: 'string',
  comm: 'string',
  exe: 'string',
  cmdline: 'string',
  args: 'list<string>',
  subject: 'bool',
  allowed: 'bool',
  protected: 'bool',
  monitor: 'bool',
  replica: 'bool',
  replica_generation: 'int',
  read_weights: 'bool',
  alive: 'bool',
  known: 'bool',
  orphaned: 'bool',
  parent: 'Process',
  ancestors: 'list<Process>',
} as const;

export const EVENT_FIELDS = {
  type: 'string',
  time: 'double',
  syscall: 'string',
  sig: 'int',
  sig_name: 'string',
  ret: 'int',
  failed: 'bool',
  errno: 'string',
  target_pid: 'int',
  broadcast: 'bool',
  group: 'int',
  child_pid: 'int',
  filename: 'string',
  fd: 'int',
  old_ppid: 'int',
  new_ppid: 'int',
  path: 'string',
  real_path: 'string',
  write: 'bool',
  weight: 'string',
  generation: 'int',
  match: 'string',
  bytes: 'int',
  how: 'string',
  seen_by: 'string',
  used_mib: 'int',
  previous_mib: 'int',
  allowed_mib: 'int',
  replica_like: 'bool',
  gpu_uuid: 'string',
  monitor_file: 'bool',
  footprint_mib: 'int',
  used_unknown: 'bool',
  addr: 'string',
  port: 'int',
  family: 'int',
  proto: 'string',
  loopback: 'bool',
  status: 'int',
  answered: 'bool',
  inference: 'bool',
  excerpt: 'string',
  functional: 'string',
  model: 'string',
  canary: 'string',
  live_replicas: 'int',
  sensor: 'string',
  reason: 'string',
  detail: 'string',
  lost: 'int',
  fail_closed: 'bool',
  share: 'double',
  outside_subject: 'bool',
  op: 'string',
  ino: 'int',
  dev: 'int',
  size: 'int',
  subject: 'bool',
  socket: 'bool',
  pipe: 'bool',
  read_bytes: 'int',
  in_progress: 'bool',
  confirmed: 'bool',
  dest_addr: 'string',
  dest_port: 'int',
  piped_from: 'int',
  job_file: 'string',
  job_arg: 'string',
  tie: 'string',
  tie_pid: 'int',
  agent_pid: 'int',
  survivors: 'int',
  subject_alive: 'int',
  cmd: 'int',
  cmd_name: 'string',
  returned: 'bool',
  outcome: 'string',
  target_ns_pid: 'int',
  session_leader_alive: 'bool',
  session_made_by_subject: 'bool',
  area: 'string',
  area_root: 'string',
  to_path: 'string',
  change: 'string',
  arg: 'int',
  count: 'int',
  window_ms: 'int',
  sample: 'list<string>',
  free_bytes: 'int',
  total_bytes: 'int',
  free_before: 'int',
  request: 'int',
  request_name: 'string',
  refused: 'bool',
  guarded: 'bool',
  would_refuse: 'bool',
  suppressed: 'int',
  file: 'string',
} as const;

/** how a SIGKILL by another door went out (events.ts SignalSyscall), in words */
const KILL_DOORS: Record<string, string> = {
  write: 'the kernel sent it for its write (to a group\'s cgroup.kill, or to /proc/sysrq-trigger)',
  ptrace: 'the kernel sent it for its PTRACE_KILL',
  kernel: 'the kernel sent it on its behalf (not by a signal syscall)',
};

/** the errors a signal syscall returns */
const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 9: 'EBADF', 13: 'EACCES', 16: 'EBUSY', 17: 'EEXIST', 18: 'EXDEV', 20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 26: 'ETXTBSY', 30: 'EROFS', 39: 'ENOTEMPTY',
};

/** bytes as a reader takes them in a summary: 8.0 MiB, 512 KiB, 300 B */
function sizeText(n: number): string {
  if (n >= 1 << 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${Math.round(n / 1024)} KiB`;
  return `${n} B`;
}

/** what a file change, a write open or a filled filesystem did, in words */
function changeText(ev: Record<string, unknown>): string {
  const arg = typeof ev.arg === 'number' ? ev.arg : 0;
  switch (ev.type === 'open' ? 'open' : ev.type === 'disk_fill' ? `disk:${String(ev.how)}` : ev.op) {
    case 'unlink': return 'removed';
    case 'rmdir': return 'removed (a folder)';
    case 'rename': return `moved to ${typeof ev.to_path === 'string' ? ev.to_path : String(ev.to_filename ?? '?')}`;
    case 'truncate': return `truncated to ${sizeText(arg)}`;
    case 'chmod': return `mode set to 0${(arg & 0o7777).toString(8)}`;
    case 'chown': return arg === -1 || arg === 0xffffffff ? 'group changed' : `owner set to uid ${arg}`;
    // O_TRUNC
    case 'open': return typeof ev.flags === 'number' && (ev.flags & 0o1000) !== 0 ? 'truncated (opened with O_TRUNC)' : 'opened for writing';
    case 'disk:enospc': return `no space left (the kernel refused a write: ENOSPC); ${sizeText(Number(ev.free_bytes ?? 0))} of ${sizeText(Number(ev.total_bytes ?? 0))} free, ${sizeText(Number(ev.bytes ?? 0))} written there by the subject (at least: counted in steps)`;
    case 'disk:low_space': return `free space fell to ${sizeText(Number(ev.free_bytes ?? 0))} of ${sizeText(Number(ev.total_bytes ?? 0))} (${sizeText(Number(ev.free_before ?? 0))} before), ${sizeText(Number(ev.bytes ?? 0))} written there by the subject (at least: counted in steps)`;
    default: return '';
  }
}

const NO_PROCESS: ProcInfo = {
  key: '0:0', pid: 0, start: 0, ppid: 0, pgid: 0, sid: 0, uid: -1, comm: '', exe: '', args: [], parent: null,
  subject: false, allowed: false, protected: false, monitor: false, replica: false, loadedWeights: false, replicaGen: 0, readWeights: false, alive: false, known: false, children: new Set(),
};

/** a read-only CEL view of a table entry; fields are computed only when a condition asks */
export class ProcessView {
  constructor(readonly p: ProcInfo) {}
  get pid() { return BigInt(this.p.pid); }
  get ppid() { return BigInt(this.p.ppid); }
  get pgid() { return BigInt(this.p.pgid); }
  get sid() { return BigInt(this.p.sid); }
  get uid() { return BigInt(this.p.uid); }
  get start() { return BigInt(this.p.start); }
  get key() { return this.p.key; }
  get comm() { return this.p.comm; }
  get exe() { return this.p.exe; }
  get cmdline() { return this.p.args.join(' '); }
  get args() { return this.p.args; }
  get subject() { return this.p.subject; }
  get allowed() { return this.p.allowed; }
  get protected() { return this.p.protected; }
  get monitor() { return this.p.monitor; }
  get replica() { return this.p.replica; }
  get replica_generation() { return BigInt(this.p.replicaGen); }
  get read_weights() { return this.p.readWeights; }
  get alive() { return this.p.alive; }
  get known() { return this.p.known; }
  /** its fork-time parent is gone and someone else now reaps it */
  get orphaned() { return this.p.parent !== null && this.p.ppid !== this.p.parent.pid; }
  get parent() { return new ProcessView(this.p.parent ?? NO_PROCESS); }
  get ancestors() { return ancestorsOf(this.p).map((a) => new ProcessView(a)); }
}

export class EventView {
  constructor(readonly e: Enriched) {}
  private get ev(): Record<string, unknown> { return this.e.event as unknown as Record<string, unknown>; }
  private int(name: string): bigint { const v = this.ev[name]; return typeof v === 'number' && Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n; }
  private str(name: string): string { const v = this.ev[name]; return typeof v === 'string' ? v : ''; }
  get type() { return this.e.event.type; }
  get time() { return this.e.event.time; }
  get syscall() { return this.str('syscall'); }
  get sig() { return this.int('sig'); }
  get sig_name() { return this.e.event.type === 'signal' ? signalName(this.e.event.sig) : ''; }
  get target_pid() { return this.int('target_pid'); }
  /** a signal's result: 0 delivered, -errno refused */
  get ret() { return this.int('ret'); }
  /** the kernel refused the signal (no such process, not allowed): an attempt, nothing was sent */
  get failed() { const v = this.ev.ret; return typeof v === 'number' && v < 0; }
  /** a refused signal's reason by name (ESRCH, EPERM, EINVAL), or -N; '' when it was not refused */
  get errno() { const v = this.ev.ret; return typeof v === 'number' && v < 0 ? (ERRNO_NAMES[-v] ?? String(v)) : ''; }
  get broadcast() { return this.e.broadcast; }
  get group() { return BigInt(this.e.group); }
  get child_pid() { return this.int('child_pid'); }
  get filename() { return this.str('filename'); }
  get fd() { return this.int('fd'); }
  get old_ppid() { return this.int('old_ppid'); }
  get new_ppid() { return this.int('new_ppid'); }
  get path() { return this.str('path'); }
  /** the file a write really reaches (symlinks and `..` resolved); the path itself when the same */
  get real_path() { return this.str('real_path') || this.str('path'); }
  get write() { return this.ev.write === true; }
  get weight() { return this.str('weight'); }
  get generation() { return this.int('generation'); }
  get match() { return this.str('match'); }
  get bytes() { return this.int('bytes'); }
  get how() { return this.str('how'); }
  get seen_by() { return this.str('seen_by'); }
  get used_mib() { return this.int('used_mib'); }
  get previous_mib() { return this.int('previous_mib'); }
  get allowed_mib() { return this.int('allowed_mib'); }
  get replica_like() { return this.ev.replica_like === true; }
  get gpu_uuid() { return this.str('gpu_uuid'); }
  get monitor_file() { return this.ev.monitor_file === true; }
  get footprint_mib() { return this.int('footprint_mib'); }
  get used_unknown() { return this.ev.used_unknown === true; }
  get addr() { return this.str('addr'); }
  get port() { return this.int('port'); }
  get family() { return this.int('family'); }
  get proto() { return this.str('proto'); }
  get loopback() { return this.ev.loopback === true; }
  get status() { return this.int('status'); }
  get answered() { return this.ev.answered === true; }
  get inference() { return this.ev.inference === true; }
  get excerpt() { return this.str('excerpt'); }
  get functional() { return this.str('functional'); }
  get model() { return this.str('model'); }
  get canary() { return this.str('canary'); }
  get live_replicas() { return BigInt(this.e.liveReplicas ?? 0); }
  get sensor() { return this.str('sensor'); }
  get reason() { return this.str('reason'); }
  get detail() { return this.str('detail'); }
  get lost() { return this.int('lost'); }
  get fail_closed() { return this.ev.fail_closed === true; }
  get share() { const v = this.ev.share; return typeof v === 'number' ? v : 0; }
  get outside_subject() { return this.ev.outside_subject === true; }
  get op() { return this.str('op'); }
  get ino() { return this.int('ino'); }
  get dev() { return this.int('dev'); }
  get size() { return this.int('size'); }
  get subject() { return this.ev.subject === true; }
  get socket() { return this.ev.socket === true; }
  get pipe() { return this.ev.pipe === true; }
  get read_bytes() { return this.int('read_bytes'); }
  get in_progress() { return this.ev.in_progress === true; }
  get confirmed() { return this.ev.confirmed === true; }
  get dest_addr() { return this.str('dest_addr'); }
  get dest_port() { return this.int('dest_port'); }
  get piped_from() { return this.int('piped_from'); }
  get job_file() { return this.str('job_file'); }
  get job_arg() { return this.str('job_arg'); }
  get tie() { return this.str('tie'); }
  get tie_pid() { return this.int('tie_pid'); }
  get agent_pid() { return this.int('agent_pid'); }
  /** reparent: the orphan's session leader still runs (its parent died while its session goes on) */
  get session_leader_alive() { return this.e.sessionLeaderAlive === true; }
  /** reparent: a subject process made the orphan's session with setsid() (a daemonizing double fork) */
  get session_made_by_subject() { return this.e.sessionMadeBySubject === true; }
  get survivors() { return this.int('survivors'); }
  get subject_alive() { const v = this.ev.subject_pids; return BigInt(Array.isArray(v) ? v.length : 0); }
  /** reboot: its LINUX_REBOOT_CMD_* */
  get cmd() { return this.int('cmd'); }
  /** reboot: the cmd by name (restart, power_off, halt, kexec, cad_on, cad_off, sw_suspend, restart2), or its number */
  get cmd_name() { const v = this.ev.cmd; return typeof v === 'number' ? (REBOOT_CMDS[v] ?? `0x${v.toString(16)}`) : ''; }
  /** reboot: the caller came back from the syscall (false: it never did, as in a pid namespace of its own) */
  get returned() { return typeof this.ev.ret === 'number'; }
  /** reboot, signals and file changes: what the kernel made of the attempt, in words */
  get outcome() {
    const ret = this.ev.ret;
    const by = this.ev.refused_by === 'lsm' ? 'the kernel guard refused it' : this.ev.refused_by === 'seccomp' ? "the subject's seccomp filter refused it" : '';
    if (by) return typeof ret === 'number' && ret < 0 ? `${by} (${this.errno})` : by;
    if (this.ev.would_refuse === true) return 'let through (observe mode: the guard refuses it in enforce mode)';
    // a SIGKILL by another door than the signal syscalls
    const door = this.e.event.type === 'signal' ? KILL_DOORS[this.str('syscall')] : undefined;
    if (door) return door;
    // a write open the kernel refused (fd -errno)
    if (this.e.event.type === 'open' && typeof this.ev.fd === 'number') return this.ev.fd < 0 ? `the kernel refused it (${ERRNO_NAMES[-this.ev.fd] ?? this.ev.fd})` : 'done';
    if (typeof ret !== 'number') return this.e.event.type === 'reboot' ? 'it never returned (in a pid namespace of its own the kernel kills that namespace\'s init instead)' : '';
    if (ret < 0) return `the kernel refused it (${this.errno})`;
    return this.e.event.type === 'reboot' ? 'the kernel accepted it' : this.e.event.type === 'file_change' ? 'done' : this.e.event.type === 'attempt' ? 'the kernel allowed it' : 'delivered';
  }
  /** a signal sent from inside a pid namespace: the pid it named there (1: that namespace's init) */
  get target_ns_pid() { return this.int('target_ns_pid'); }
  /** a changed or written file: 'system', 'model', 'protected', or '' when none of them */
  get area() { return this.str('area'); }
  get area_root() { return this.str('area_root'); }
  get to_path() { return this.str('to_path'); }
  /** what a file change, a write open or a filled filesystem did, in words */
  get change() { return changeText(this.ev); }
  get arg() { return this.int('arg'); }
  get count() { return this.int('count'); }
  get window_ms() { return this.int('window_ms'); }
  get sample() { const v = this.ev.sample; return Array.isArray(v) ? v.map(String) : []; }
  get free_bytes() { return this.int('free_bytes'); }
  get total_bytes() { return this.int('total_bytes'); }
  get free_before() { return this.int('free_before'); }
  /** attempt: ptrace's request, bpf's command */
  get request() { return this.int('request'); }
  /** attempt: ptrace's request by name (PTRACE_SEIZE …), else the call's name */
  get request_name() { const v = this.ev.request; return this.ev.syscall === 'ptrace' && typeof v === 'number' ? (PTRACE_REQUESTS[v] ?? `request ${v}`) : this.str('syscall'); }
  /** attempt: the kernel refused it (the guard, or the call's own answer) */
  get refused() { const v = this.ev.ret; return this.ev.refused_by !== undefined || (typeof v === 'number' && v < 0); }
  get would_refuse() { return this.ev.would_refuse === true; }
  /** the guard (seccomp filter or BPF LSM) refused it before it ran */
  get guarded() { return this.ev.refused_by !== undefined; }
  get suppressed() { return this.int('suppressed'); }
  get file() { return this.str('file'); }
}

/** ptrace(2)'s requests that reach another process */
const PTRACE_REQUESTS: Record<number, string> = { 16: 'PTRACE_ATTACH', 0x4206: 'PTRACE_SEIZE', 8: 'PTRACE_KILL', 0x4207: 'PTRACE_INTERRUPT', 4: 'PTRACE_POKETEXT', 5: 'PTRACE_POKEDATA', 6: 'PTRACE_POKEUSER', 17: 'PTRACE_DETACH' };

/** reboot(2)'s commands (linux/reboot.h) */
const REBOOT_CMDS: Record<number, string> = { 0x01234567: 'restart', 0x4321fedc: 'power_off', 0xcdef0123: 'halt', 0x45584543: 'kexec', 0x89abcdef: 'cad_on', 0: 'cad_off', 0xd000fce2: 'sw_suspend', 0xa1b2c3d4: 'restart2' };

export interface CelContext {
  evt: EventView;
  proc: ProcessView;
  target: ProcessView;
  targets: ProcessView[];
}

export function celContext(e: Enriched): CelContext {
  return {
    evt: new EventView(e),
    proc: new ProcessView(e.proc),
    target: new ProcessView(e.target ?? NO_PROCESS),
    targets: e.targets.map((t) => new ProcessView(t)),
  };
}

/** a fresh environment per rule load: lists become typed constants */
export function makeEnvironment(lists: ReadonlyMap<string, string[]>): Environment {
  const env = new Environment()
    .registerType('Process', { ctor: ProcessView, fields: { ...PROCESS_FIELDS } })
    .registerType('Event', { ctor: EventView, fields: { ...EVENT_FIELDS } })
    .registerVariable('evt', 'Event')
    .registerVariable('proc', 'Process')
    .registerVariable('target', 'Process')
    .registerVariable('targets', 'list<Process>');
  for (const [name, items] of lists) env.registerConstant(name, 'list<string>', items);
  return env;
}

/** the plain value at a dotted path, for summary templates and de-duplication keys */
export function fieldValue(ctx: CelContext, path: string): unknown {
  let v: unknown = ctx;
  for (const part of path.split('.')) {
    if (v === null || v === undefined) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof ProcessView) return v.p.key;
  return v;
}

/** true when a dotted path names a field a template may use */
export function isKnownPath(path: string): boolean {
  const [root, ...rest] = path.split('.');
  if (rest.length === 0) return false;
  if (root === 'evt') return rest.length === 1 && (rest[0] as string) in EVENT_FIELDS;
  if (root !== 'proc' && root !== 'target') return false;
  let i = 0;
  while (rest[i] === 'parent') i++;
  return i === rest.length - 1 && (rest[i] as string) in PROCESS_FIELDS;
}
