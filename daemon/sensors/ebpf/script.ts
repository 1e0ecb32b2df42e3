// Generates the bpftrace program. Each probe prints one tab-separated line;
// strings that may hold tabs or spaces (filename, comm) go last.

export type SubjectFilter =
  | { kind: 'cgroup'; path: string }
  | { kind: 'uid'; uid: number };

function predicate(f: SubjectFilter): string {
  if (f.kind === 'cgroup') {
    if (/["\\\n]/.test(f.path)) throw new Error(`cgroup path not usable in a bpftrace program: ${f.path}`);
    // cgroupid() is resolved when bpftrace compiles the program: the group must exist by then.
    return `cgroup == cgroupid("${f.path}")`;
  }
  if (!Number.isInteger(f.uid) || f.uid < 0) throw new Error(`bad uid ${f.uid}`);
  return `uid == ${f.uid}`;
}

export const CLONE_THREAD = 0x10000;
export const READY = 'REDLINE-READY';

export function generateScript(filter: SubjectFilter): string {
  const p = predicate(filter);
  return [
    // BEGIN runs once every probe is attached; bpftrace's own attached_probes message
    // comes before the attaching, and a subject started on it could act unseen
    `BEGIN { printf("${READY}\\n"); }`,
    // task_newtask fires in the parent with the clone flags, so threads can be dropped in the kernel.
    `tracepoint:task:task_newtask /${p} && (args->clone_flags & ${CLONE_THREAD}) == 0/ {`,
    `  printf("F\\t%llu\\t%d\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->pid, comm);`,
    `}`,
    `tracepoint:sched:sched_process_exec /${p}/ {`,
    `  printf("X\\t%llu\\t%d\\t%d\\t%s\\t%s\\n", nsecs, pid, tid, comm, str(args->filename));`,
    `}`,
    // only the thread-group leader's exit ends the process
    `tracepoint:sched:sched_process_exit /${p} && pid == tid/ {`,
    `  printf("E\\t%llu\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, comm);`,
    `}`,
    `tracepoint:syscalls:sys_enter_kill /${p}/ {`,
    `  printf("S\\t%llu\\t%d\\t%d\\tkill\\t%d\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->pid, args->sig, uid, comm);`,
    `}`,
    `tracepoint:syscalls:sys_enter_tkill /${p}/ {`,
    `  printf("S\\t%llu\\t%d\\t%d\\ttkill\\t%d\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->pid, args->sig, uid, comm);`,
    `}`,
    // tgkill names a thread; the process is its tgid argument
    `tracepoint:syscalls:sys_enter_tgkill /${p}/ {`,
    `  printf("S\\t%llu\\t%d\\t%d\\ttgkill\\t%d\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->tgid, args->sig, uid, comm);`,
    `}`,
    // the target is an fd; userspace resolves it through /proc/PID/fdinfo
    `tracepoint:syscalls:sys_enter_pidfd_send_signal /${p}/ {`,
    `  printf("S\\t%llu\\t%d\\t%d\\tpidfd_send_signal\\t%d\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->pidfd, args->sig, uid, comm);`,
    `}`,
    `tracepoint:syscalls:sys_exit_setsid /${p} && args->ret > 0/ {`,
    `  printf("D\\t%llu\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, comm);`,
    `}`,
    ...fileProbes(p),
    ...netProbes(p),
    '',
  ].join('\n');
}

/** closes of files read (or written) less far than this are not reported */
export const READ_CLOSE_MIN = 1 << 20;

/**
 * File opens (with the fd they returned, so userspace can name the file through
 * /proc/PID/fd even when the path was relative) and new links. The open's flags and name
 * pointer are kept per thread between syscall entry and exit; flags are stored +1 so that
 * O_RDONLY (0) is not mistaken for "no entry".
 */
function fileProbes(p: string): string[] {
  const enter = (probe: string, dfd: string, flags = 'args->flags', name = 'args->filename') => [
    `tracepoint:syscalls:${probe} /${p}/ {`,
    `  @oflags[tid] = ${flags} + 1; @oname[tid] = ${name}; @odfd[tid] = ${dfd};`,
    `}`,
  ];
  const exit = (probe: string) => [
    `tracepoint:syscalls:${probe} /@oflags[tid]/ {`,
    // failed opens are reported only when they asked to write: an attempt on the monitor counts
    `  if (args->ret >= 0 || ((@oflags[tid] - 1) & 3) != 0) {`,
    `    printf("O\\t%llu\\t%d\\t%d\\t%d\\t%d\\t%d\\t%s\\t%s\\n", nsecs, pid, tid, args->ret, @oflags[tid] - 1, @odfd[tid], comm, str(@oname[tid]));`,
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
    // a file closed after reading past 1 MiB: its position, inode and device, read in the
    // kernel (a loader that reads the weights whole and closes them leaves no fd to look at)
    `tracepoint:syscalls:sys_enter_close /${p}/ {`,
    `  $files = curtask->files;`,
    `  if (args->fd < $files->fdt->max_fds) {`,
    `    $f = (struct file *)*($files->fdt->fd + args->fd);`,
    // regular files only (a directory's position says nothing about bytes read)
    `    if ($f != 0 && $f->f_pos >= ${READ_CLOSE_MIN} && ($f->f_inode->i_mode & 0xf000) == 0x8000) {`,
    `      printf("R\\t%llu\\t%d\\t%d\\t%d\\t%lld\\t%lu\\t%u\\t%s\\n", nsecs, pid, tid, args->fd, $f->f_pos, $f->f_inode->i_ino, $f->f_inode->i_sb->s_dev, comm);`,
    `    }`,
    `  }`,
    `}`,
    ...link('sys_enter_linkat', 'hard', 'args->newdfd'),
    ...link('sys_enter_link', 'hard', '-100'),
    ...link('sys_enter_symlinkat', 'sym', 'args->newdfd'),
    ...link('sys_enter_symlink', 'sym', '-100'),
  ];
}

/**
 * The local end of the socket behind `fd`, read from the kernel's own structures (the fd
 * table → struct file → struct sock), printed as one line of kind `tag`: family, protocol,
 * port, socket inode and address, as the process's own network namespace sees them.
 * Only IPv4/IPv6 sockets; `cond` narrows further (a bind counts only for UDP).
 */
function socketLine(tag: string, cond: string): string[] {
  const head = `"${tag}\\t%llu\\t%d\\t%d\\t%d\\t%d\\t%d\\t%d\\t%lu\\t%s\\t%s\\n", nsecs, pid, tid, $fd`;
  const tail = `$sk->sk_protocol, $sk->__sk_common.skc_num, $f->f_inode->i_ino`;
  return [
    `    $f = (struct file *)*(curtask->files->fdt->fd + $fd);`,
    `    $sk = ((struct socket *)$f->private_data)->sk;`,
    `    $fam = $sk->__sk_common.skc_family;`,
    `    if ($fam == 2 && ${cond}) { printf(${head}, 4, ${tail}, ntop(2, $sk->__sk_common.skc_rcv_saddr), comm); }`,
    `    if ($fam == 10 && ${cond}) { printf(${head}, 6, ${tail}, ntop(10, $sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8), comm); }`,
  ];
}

/**
 * Sockets: a successful listen(), a successful bind() of a UDP socket to a port (a UDP server
 * never listens), each with its address read in the kernel; and every connect() with its
 * IPv4/IPv6 destination, read from the caller's sockaddr.
 */
function netProbes(p: string): string[] {
  return [
    `tracepoint:syscalls:sys_enter_listen /${p}/ { @lfd[tid] = args->fd + 1; }`,
    `tracepoint:syscalls:sys_exit_listen /@lfd[tid]/ {`,
    `  if (args->ret == 0) {`,
    `    $fd = @lfd[tid] - 1;`,
    ...socketLine('N', '1'),
    `  }`,
    `  delete(@lfd[tid]);`,
    `}`,
    `tracepoint:syscalls:sys_enter_bind /${p}/ { @bfd[tid] = args->fd + 1; }`,
    `tracepoint:syscalls:sys_exit_bind /@bfd[tid]/ {`,
    `  if (args->ret == 0) {`,
    `    $fd = @bfd[tid] - 1;`,
    ...socketLine('B', '$sk->sk_protocol == 17 && $sk->__sk_common.skc_num != 0'),
    `  }`,
    `  delete(@bfd[tid]);`,
    `}`,
    `tracepoint:syscalls:sys_enter_connect /${p}/ {`,
    `  $sa = (struct sockaddr_in *)args->uservaddr;`,
    `  if ($sa->sin_family == 2) {`,
    `    printf("C\\t%llu\\t%d\\t%d\\t%d\\t4\\t%d\\t%s\\t%s\\n", nsecs, pid, tid, args->fd, bswap($sa->sin_port), ntop(2, $sa->sin_addr.s_addr), comm);`,
    `  } else if ($sa->sin_family == 10) {`,
    `    $s6 = (struct sockaddr_in6 *)args->uservaddr;`,
    `    printf("C\\t%llu\\t%d\\t%d\\t%d\\t6\\t%d\\t%s\\t%s\\n", nsecs, pid, tid, args->fd, bswap($s6->sin6_port), ntop(10, $s6->sin6_addr.in6_u.u6_addr8), comm);`,
    `  }`,
    `}`,
  ];
}
