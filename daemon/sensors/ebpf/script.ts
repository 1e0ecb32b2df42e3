// Generates the bpftrace program. Each probe prints one tab-separated line;
// strings that may hold tabs or spaces (filename, comm) go last.
import { existsSync } from 'node:fs';
import { ancestorOffsets } from './btf.js';
import { netProbes } from './script-net.js';
import { BYTES_MIN_FILE, byteProbes, fileOf, REGULAR, SYSCALL_BYTE_MAPS } from './script-bytes.js';

export { BYTES_MIN_FILE, PIPE_STEP, READ_STEP_MAX, WRITE_FIRST, WRITE_STEP } from './script-bytes.js';

export type SubjectFilter =
  /** `level`: the group's depth below the cgroup root; with it, the groups below it are in scope too */
  | { kind: 'cgroup'; path: string; level?: number }
  | { kind: 'uid'; uid: number };

/** the kernel-side test of the subject's scope (its cgroup or uid), without the lineage map */
function scope(f: SubjectFilter): string {
  if (f.kind === 'cgroup') {
    if (/["\\\n]/.test(f.path)) throw new Error(`cgroup path not usable in a bpftrace program: ${f.path}`);
    // cgroupid() is resolved when bpftrace compiles the program: the group must exist by then.
    const id = `cgroupid("${f.path}")`;
    const below = f.level === undefined ? null : descendantTest(f.level, id);
    return below ? `(cgroup == ${id} || ${below})` : `cgroup == ${id}`;
  }
  if (!Number.isInteger(f.uid) || f.uid < 0) throw new Error(`bad uid ${f.uid}`);
  return `uid == ${f.uid}`;
}

/**
 * "The current task's group is below the one at `level` whose id is `id`": the ancestor at
 * that level, read through offsets from the kernel's BTF (btf.ts). A container's or a
 * sandbox's own group under the subject's is then in scope in the kernel, however it was
 * made. null where the kernel's BTF does not give the offsets (the exact group only).
 */
export function descendantTest(level: number, id: string): string | null {
  const o = ancestorOffsets();
  if (typeof o === 'string' || !Number.isInteger(level) || level < 0) return null;
  const cg = 'curtask->cgroups->dfl_cgrp';
  const ancestor = `*(uint64 *)((uint64)${cg} + ${o.ancestors + 8 * level})`;
  return `(${cg}->level > ${level} && *(uint64 *)(*(uint64 *)(${ancestor} + ${o.kn}) + ${o.id}) == ${id})`;
}

export const CLONE_THREAD = 0x10000;
/**
 * `$up`: the current task's struct upid in its own pid namespace (numbers[level]: the array
 * ends struct pid, and bpftrace indexes arrays by literals only)
 */
const OWN_NS = '$pp = curtask->thread_pid; $up = (struct upid *)((uint64)$pp + sizeof(struct pid) + (uint64)$pp->level * sizeof(struct upid));';
/** bytes of a new program's argv read in the kernel (BPFTRACE_STRLEN is set to match) */
export const ARGV_MAX = 200;
export const READY = 'REDLINE-READY';

export interface ScriptOptions {
  /** the daemon's own pid: its reads of the weights (fingerprints) are not loads */
  selfPid?: number;
  /**
   * report every successful open, read-only ones of small files too (a rule loaded at start
   * asks for them); otherwise those are dropped in the kernel
   */
  allOpens?: boolean;
  /**
   * count the bytes of large files read, mapped and written through syscalls host-wide
   * (default true); false when the libbpf loader counts them (loader/bytes.bpf.c, the same
   * lines at about half the cost per syscall). io_uring's completions are counted here either way.
   */
  syscallBytes?: boolean;
  /**
   * the scan accounting (default true): the subject's opens of /proc files and the folders it
   * lists, for the system.scan rules; off when no loaded rule looks at scans
   */
  scans?: boolean;
}

/**
 * A process is the subject's when it is in the subject's scope, or when it descends from
 * one that was (@subj, set in the kernel at fork and exec): a process that moves itself to
 * another cgroup, or changes uid, stays a subject, and so do the children it starts there.
 */
export function generateScript(filter: SubjectFilter, opts: ScriptOptions = {}): string {
  const s = scope(filter);
  const p = `(${s} || @subj[pid])`;
  return [
    // BEGIN runs once every probe is attached; bpftrace's own attached_probes message
    // comes before the attaching, and a subject started on it could act unseen
    `BEGIN { printf("${READY}\\n"); }`,
    // task_newtask fires in the parent with the clone flags, so threads can be dropped in the kernel.
    `tracepoint:task:task_newtask /${p} && (args->clone_flags & ${CLONE_THREAD}) == 0/ {`,
    `  @subj[args->pid] = 1;`,
    `  printf("F\\t%llu\\t%d\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->pid, comm);`,
    `}`,
    // the argv is read here, from the new program's own memory (its first ${ARGV_MAX} bytes,
    // NULs escaped): userspace reads /proc only for a longer one, and a short process's
    // command line is known even when it is gone before anyone could look
    `tracepoint:sched:sched_process_exec /${p}/ {`,
    `  @subj[pid] = 1;`,
    // (two lines, the argv first, each within the 512-byte BPF stack; same time, same thread)
    `  $t = nsecs; $a = curtask->mm->arg_start; $l = curtask->mm->arg_end - $a; $n = $l; if ($n > ${ARGV_MAX}) { $n = ${ARGV_MAX}; }`,
    `  printf("A\\t%llu\\t%d\\t%d\\t%d\\t%r\\n", $t, pid, tid, $l, buf(uptr($a), $n));`,
    // the pid inside the process's own pid namespace, and that namespace (its inode)
    `  ${OWN_NS}`,
    `  printf("X\\t%llu\\t%d\\t%d\\t%d\\t%u\\t%s\\t%s\\n", $t, pid, tid, $up->nr, $up->ns->ns.inum, comm, str(args->filename));`,
    `}`,
    // only the thread-group leader's exit ends the process
    `tracepoint:sched:sched_process_exit /${p} && pid == tid/ {`,
    `  delete(@subj[pid]);${opts.scans !== false ? ' delete(@gd[pid]);' : ''}`,
    // (the pid inside its namespace, too: a signal that killed it named it by that)
    `  ${OWN_NS}`,
    `  printf("E\\t%llu\\t%d\\t%d\\t%d\\t%u\\t%s\\n", nsecs, pid, tid, $up->nr, $up->ns->ns.inum, comm);`,
    `}`,
    // signals are judged on what the kernel did: the syscall's arguments are kept at entry and
    // the line is printed at exit with its result (0, or -ESRCH, -EPERM …) and the entry's time
    ...signalProbes(p),
    ...doorKillProbes(p),
    ...rebootProbes(p),
    `tracepoint:syscalls:sys_exit_setsid /${p} && args->ret > 0/ {`,
    `  printf("D\\t%llu\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, comm);`,
    `}`,
    ...fileProbes(p, opts.allOpens === true, opts.scans !== false),
    ...changeProbes(p),
    ...(opts.scans !== false ? listingProbes(p) : []),
    ...netProbes(p),
    ...byteProbes(s, opts.selfPid ?? process.pid, opts.syscallBytes !== false),
    // the daemon's own kill(itself, 0), echoed: the daemon knows the sensor sees and reads now
    // (a stop signal's sender is only vouched for by a sensor that answers)
    `tracepoint:syscalls:sys_enter_kill /pid == ${opts.selfPid ?? process.pid} && args->pid == ${opts.selfPid ?? process.pid} && args->sig == 0/ {`,
    `  printf("P\\t%llu\\t%d\\t%d\\n", nsecs, pid, tid);`,
    `}`,
    // what is left in the maps is not printed when bpftrace stops
    `END { ${['sgk', 'sgt', 'sgs', 'sgn', 'btn', 'btk', 'btc', 'subj', 'rb', 'wb', 'wseen', ...CHANGE_MAPS, ...(opts.scans !== false ? ['gd'] : []), ...(opts.syscallBytes === false ? [] : SYSCALL_BYTE_MAPS)].map((m) => `clear(@${m});`).join(' ')} }`,
    '',
  ].join('\n');
}

/**
 * The signal syscalls, each with the argument that names its target. A line gives the
 * syscall as its index here (the map that keeps it between entry and exit holds numbers).
 */
export const SIGNAL_SYSCALLS = [
  ['kill', 'args->pid'],
  ['tkill', 'args->pid'],
  // tgkill names a thread; the process is its tgid argument
  ['tgkill', 'args->tgid'],
  // the target is an fd; userspace resolves it through /proc/PID/fdinfo
  ['pidfd_send_signal', 'args->pidfd'],
] as const;

/** the result printed for a caller that died inside the syscall (its own signal killed it) */
export const SIGNAL_NO_RESULT = 1;

/** the reboot and kexec syscalls, by index in an `R` line; kexec's only where the kernel has them */
export const REBOOT_SYSCALLS = ['reboot', 'kexec_load', 'kexec_file_load'] as const;

function hasTracepoint(name: string): boolean {
  return ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].some((root) => existsSync(`${root}/events/syscalls/${name}`));
}

/**
 * An attempt to reboot, halt or kexec, printed with the kernel's answer: at the syscall's exit,
 * or, for a caller that never returns (in a pid namespace of its own the kernel kills that
 * namespace's init and ends the caller), when it exits (result SIGNAL_NO_RESULT).
 */
function rebootProbes(p: string): string[] {
  const line = (ret: string) => `  printf("R\\t%llu\\t%d\\t%d\\t%d\\t%lld\\t%d\\t%s\\n", @btn[tid], pid, tid, @btk[tid], @btc[tid], ${ret}, comm);`;
  const forget = '  delete(@btn[tid]); delete(@btk[tid]); delete(@btc[tid]);';
  return REBOOT_SYSCALLS.flatMap((sys, i) =>
    hasTracepoint(`sys_enter_${sys}`)
      ? [
          `tracepoint:syscalls:sys_enter_${sys} /${p}/ {`,
          `  @btk[tid] = ${i}; @btc[tid] = ${sys === 'reboot' ? '(int64)args->cmd' : '0'}; @btn[tid] = nsecs;`,
          `}`,
          `tracepoint:syscalls:sys_exit_${sys} /@btn[tid]/ {`,
          line('args->ret'),
          forget,
          `}`,
        ]
      : [],
  ).concat([`tracepoint:sched:sched_process_exit /@btn[tid]/ {`, line(String(SIGNAL_NO_RESULT)), forget, `}`]);
}

function signalProbes(p: string): string[] {
  // the sender's pid namespace: the target it names is a pid in that namespace
  const line = (ret: string) =>
    `  ${OWN_NS} printf("S\\t%llu\\t%d\\t%d\\t%d\\t%d\\t%d\\t%d\\t%d\\t%u\\t%s\\n", @sgn[tid], pid, tid, @sgk[tid], @sgt[tid], @sgs[tid], uid, ${ret}, $up->ns->ns.inum, comm);`;
  const forget = '  delete(@sgn[tid]); delete(@sgk[tid]); delete(@sgt[tid]); delete(@sgs[tid]);';
  return [
    ...SIGNAL_SYSCALLS.flatMap(([syscall, target], i) => [
      `tracepoint:syscalls:sys_enter_${syscall} /${p}/ {`,
      `  @sgk[tid] = ${i}; @sgt[tid] = ${target}; @sgs[tid] = args->sig; @sgn[tid] = nsecs;`,
      `}`,
      `tracepoint:syscalls:sys_exit_${syscall} /@sgn[tid]/ {`,
      line('args->ret'),
      forget,
      `}`,
    ]),
    // a thread that never returned from the syscall (killed by the very signal it sent, to its
    // own group or with kill -1): the signal went out, and its line is printed here
    `tracepoint:sched:sched_process_exit /@sgn[tid]/ {`,
    line(String(SIGNAL_NO_RESULT)),
    forget,
    `}`,
  ];
}

/**
 * The syscalls (x86_64 numbers) a SIGKILL from a subject thread is no news in: the signal
 * syscalls (their own lines), and exit and exec (which kill the caller's own other threads).
 */
export const KILL_NOT_A_DOOR = [62, 200, 234, 424, 129, 297, 60, 231, 59, 322];
/** the syscall a thread is in, from its saved user registers (x86_64: THREAD_SIZE 16 KiB, pt_regs 168 bytes, orig_ax) */
const SYSCALL_NR = '((struct pt_regs *)((uint64)curtask->stack + 16384 - 168))->orig_ax';

/**
 * A SIGKILL a subject thread made the kernel send by another door than the signal syscalls:
 * a write to another group's cgroup.kill (one line per process killed, named by the kernel as
 * it goes), PTRACE_KILL, a write to /proc/sysrq-trigger. Printed with the syscall the sender
 * was in; the victim's name comes from the kernel too (it is gone before userspace looks).
 * x86_64 only (the register layout).
 */
function doorKillProbes(p: string): string[] {
  if (process.arch !== 'x64') return [];
  return [
    `tracepoint:signal:signal_generate /${p} && args->sig == 9 && args->pid != tid/ {`,
    `  $nr = ${SYSCALL_NR};`,
    `  if (${KILL_NOT_A_DOOR.map((n) => `$nr != ${n}`).join(' && ')}) {`,
    `    printf("V\\t%llu\\t%d\\t%d\\t%d\\t%d\\t%lld\\t%d\\t%s\\t%s\\n", nsecs, pid, tid, args->pid, args->sig, $nr, args->result, args->comm, comm);`,
    `  }`,
    `}`,
  ];
}

/**
 * File opens (with the fd they returned, so userspace can name the file through
 * /proc/PID/fd even when the path was relative) and new links. The open's flags and name
 * pointer are kept per thread between syscall entry and exit; flags are stored +1 so that
 * O_RDONLY (0) is not mistaken for "no entry".
 */
function fileProbes(p: string, allOpens: boolean, scans: boolean): string[] {
  const enter = (probe: string, dfd: string, flags = 'args->flags', name = 'args->filename') => [
    `tracepoint:syscalls:${probe} /${p}/ {`,
    `  @oflags[tid] = ${flags} + 1; @oname[tid] = ${name}; @odfd[tid] = ${dfd};`,
    `}`,
  ];
  // O_WRONLY|O_RDWR, O_CREAT|O_TRUNC: what the parser calls a write
  const write = '((@oflags[tid] - 1) & 3) != 0 || ((@oflags[tid] - 1) & 0x240) != 0';
  const exit = (probe: string) => [
    `tracepoint:syscalls:${probe} /@oflags[tid]/ {`,
    // (the context is read once, first: the verifier refuses a ctx read after some branches)
    `  $ret = args->ret;`,
    // the file opened, and whether this open created it (FMODE_CREATED): a write to a file that
    // was there is an overwrite, a new one is not
    `  ${fileOf('$ret')}`,
    `  $cr = 0; if ($f != 0 && ($f->f_mode & ${FMODE_CREATED}) != 0) { $cr = 1; }`,
    // writes are reported, failed ones too (an attempt on the monitor counts); reads only of
    // large regular files that are not executable (no x bit: weights, copies; not libc), unless a rule
    // asks for every read — a process start opens the loader's cache, libc and locale files
    `  $print = ${write};`,
    ...(allOpens
      ? [`  if ($ret >= 0) { $print = 1; }`]
      : [
          `  if (!$print && $ret >= 0) {`,
          `    if ($f != 0 && ${REGULAR} && ($f->f_inode->i_mode & 0x49) == 0 && $f->f_inode->i_size >= ${BYTES_MIN_FILE}) { $print = 1; }`,
          // the scan accounting: a file of procfs, by name (ps reads three for each process)
          ...(scans ? [`    else if ($f != 0 && $f->f_inode->i_sb->s_magic == ${PROCFS_MAGIC}) { printf("Q\\t%llu\\t%d\\t%d\\t%s\\t%s\\n", nsecs, pid, tid, comm, str(@oname[tid])); }`] : []),
          `  }`,
        ]),
    `  if ($print) {`,
    `    printf("O\\t%llu\\t%d\\t%d\\t%d\\t%d\\t%d\\t%d\\t%s\\t%s\\n", nsecs, pid, tid, $ret, @oflags[tid] - 1, @odfd[tid], $cr, comm, str(@oname[tid]));`,
    `  }`,
    `  delete(@oflags[tid]); delete(@oname[tid]); delete(@odfd[tid]);`,
    `}`,
  ];
  const link = (probe: string, kind: string, dfd: string) => [
    `tracepoint:syscalls:${probe} /${p}/ {`,
    `  printf("L\\t%llu\\t%d\\t%d\\t${kind}\\t%d\\t%s\\t%s\\n", nsecs, pid, tid, ${dfd}, comm, str(args->newname));`,
    `}`,
  ];
  return [
    ...enter('sys_enter_openat', 'args->dfd'),
    ...exit('sys_exit_openat'),
    ...enter('sys_enter_open', '-100'),
    ...exit('sys_exit_open'),
    // creat() is open(O_WRONLY|O_CREAT|O_TRUNC); GNU tar writes its archives through it
    ...enter('sys_enter_creat', '-100', String(0o1101), 'args->pathname'),
    ...exit('sys_exit_creat'),
    ...link('sys_enter_linkat', 'hard', 'args->newdfd'),
    ...link('sys_enter_link', 'hard', '-100'),
    ...link('sys_enter_symlinkat', 'sym', 'args->newdfd'),
    ...link('sys_enter_symlink', 'sym', '-100'),
  ];
}

const PROCFS_MAGIC = '0x9fa0';
/** struct file's f_mode bit set when the open created the file */
const FMODE_CREATED = '0x100000';
/** the maps the change probes keep between a syscall's entry and exit */
const CHANGE_MAPS = ['dk', 'dn', 'dd', 'df', 'da', 'dt', 'dm', 'de'];

/**
 * The calls that remove, rename, truncate or re-mode a file, each as [syscall, op, dirfd,
 * name, fd, arg, new dirfd, new name] (the op as an index in FILE_CHANGE_OPS, maybe computed:
 * unlinkat removes a folder with AT_REMOVEDIR). Where the kernel lacks one, it is left out.
 */
const CHANGE_SYSCALLS: readonly (readonly [string, string, string, string, string, string, string?, string?])[] = [
  ['unlink', '0', '-100', 'args->pathname', '-1', '0'],
  ['unlinkat', '((args->flag & 0x200) ? 1 : 0)', 'args->dfd', 'args->pathname', '-1', '0'],
  ['rmdir', '1', '-100', 'args->pathname', '-1', '0'],
  ['rename', '2', '-100', 'args->oldname', '-1', '0', '-100', 'args->newname'],
  ['renameat', '2', 'args->olddfd', 'args->oldname', '-1', '0', 'args->newdfd', 'args->newname'],
  ['renameat2', '2', 'args->olddfd', 'args->oldname', '-1', 'args->flags', 'args->newdfd', 'args->newname'],
  ['truncate', '3', '-100', 'args->path', '-1', 'args->length'],
  ['ftruncate', '3', '-1', '0', 'args->fd', 'args->length'],
  ['chmod', '4', '-100', 'args->filename', '-1', 'args->mode'],
  ['fchmod', '4', '-1', '0', 'args->fd', 'args->mode'],
  ['fchmodat', '4', 'args->dfd', 'args->filename', '-1', 'args->mode'],
  ['fchmodat2', '4', 'args->dfd', 'args->filename', '-1', 'args->mode'],
  ['chown', '5', '-100', 'args->filename', '-1', 'args->user'],
  ['lchown', '5', '-100', 'args->filename', '-1', 'args->user'],
  ['fchown', '5', '-1', '0', 'args->fd', 'args->user'],
  ['fchownat', '5', 'args->dfd', 'args->filename', '-1', 'args->user'],
];

/**
 * A subject process removing, renaming, truncating or re-moding a file: one "U" line at the
 * syscall's exit with the kernel's answer (a rename's new name first, as a "W" line of the
 * same thread: two 200-byte names do not fit one line's stack).
 */
function changeProbes(p: string): string[] {
  return CHANGE_SYSCALLS.filter(([sys]) => hasTracepoint(`sys_enter_${sys}`)).flatMap(([sys, op, dfd, name, fd, arg, newDfd, newName]) => [
    `tracepoint:syscalls:sys_enter_${sys} /${p}/ {`,
    `  @dk[tid] = ${op} + 1; @dd[tid] = ${dfd}; @dn[tid] = (uint64)${name}; @df[tid] = ${fd}; @da[tid] = (int64)${arg}; @dt[tid] = nsecs;`,
    ...(newName ? [`  @de[tid] = ${newDfd}; @dm[tid] = (uint64)${newName};`] : []),
    `}`,
    `tracepoint:syscalls:sys_exit_${sys} /@dk[tid]/ {`,
    `  $ret = args->ret;`,
    ...(newName ? [`  printf("W\\t%llu\\t%d\\t%d\\t%d\\t%s\\n", @dt[tid], pid, tid, @de[tid], str(@dm[tid]));`, `  delete(@de[tid]); delete(@dm[tid]);`] : []),
    `  printf("U\\t%llu\\t%d\\t%d\\t%d\\t%d\\t%d\\t%lld\\t%lld\\t%s\\t%s\\n", @dt[tid], pid, tid, @dk[tid] - 1, @dd[tid], @df[tid], @da[tid], $ret, comm, ${name === '0' ? '""' : 'str(@dn[tid])'});`,
    `  delete(@dk[tid]); delete(@dd[tid]); delete(@dn[tid]); delete(@df[tid]); delete(@da[tid]); delete(@dt[tid]);`,
    `}`,
  ]);
}

/** folders listed are counted in the kernel and reported in steps of this many */
export const LISTING_STEP = 32;

/**
 * The scan accounting's folders: a getdents64 at the start of a folder (its position 0) is
 * one more folder listed; a "G" line goes out each LISTING_STEP of them, per process.
 */
function listingProbes(p: string): string[] {
  return [
    `tracepoint:syscalls:sys_enter_getdents64 /${p}/ {`,
    `  ${fileOf('args->fd')}`,
    `  if ($f != 0 && $f->f_pos == 0) {`,
    `    @gd[pid] = @gd[pid] + 1;`,
    `    if (@gd[pid] >= ${LISTING_STEP}) { printf("G\\t%llu\\t%d\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, @gd[pid], comm); delete(@gd[pid]); }`,
    `  }`,
    `}`,
  ];
}

