// The bpftrace program's network probes: listen() and a UDP bind() of the subject's sockets,
// and its connects, with the address. Part of the program script.ts generates.

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
export function netProbes(p: string): string[] {
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
