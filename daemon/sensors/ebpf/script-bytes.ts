// The bpftrace program's byte accounting: bytes moved through large files, sockets and pipes
// by every syscall that moves them (and io_uring completions, and mappings), reported in steps;
// a write the kernel refused for want of space. Part of the program script.ts generates.

/** files smaller than this are never weights worth following: their reads are not counted */
export const BYTES_MIN_FILE = 1 << 20;
/** reads and maps of a file are reported each time an eighth of it (at most 64 MiB) adds up */
export const READ_STEP_MAX = 64 << 20;
/** writes are reported at the first MiB, then each 16 MiB */
export const WRITE_FIRST = 1 << 20;
export const WRITE_STEP = 16 << 20;
/** pipes have no size: their bytes are reported each 4 MiB (a pipe carrying the weights on to a compressor, say) */
export const PIPE_STEP = 4 << 20;
/** the maps only the syscall byte probes use (@rb, @wb and @wseen are io_uring's too) */
export const SYSCALL_BYTE_MAPS = ['mb', 'rf', 'rfd', 'wf', 'wfd', 'mf', 'ml', 'mfd', 'mw'];
// unreported remainders are dropped this often, so the maps never outgrow the host's work
const CLEAR_EVERY_S = 60;

/** the struct file behind `fd` of the current task, as `$f` (0 when there is none) */
export function fileOf(fd: string): string {
  return `$t = curtask->files->fdt; $f = (struct file *)0; if ((uint64)${fd} < (uint64)$t->max_fds) { $f = (struct file *)*($t->fd + ${fd}); }`;
}

export const REGULAR = '($f->f_inode->i_mode & 0xf000) == 0x8000';
const SOCKET = '($f->f_inode->i_mode & 0xf000) == 0xc000';
const PIPE = '($f->f_inode->i_mode & 0xf000) == 0x1000';

/**
 * One "Y" line: bytes that `op` moved through (pid, file) since its last line. Bytes add up
 * per (process, device, inode) in the kernel, in `map`, and a line goes out only when they
 * reach the step: a loader reading a 10 GiB shard prints eight lines, not a million.
 */
function account(map: string, op: string, file: string, bytes: string, fd: string, s: string, write: boolean): string[] {
  const key = `${map}[pid, $i->i_sb->s_dev, $i->i_ino]`;
  const step = write
    ? [`  $step = @wseen[pid, $i->i_sb->s_dev, $i->i_ino] ? ${WRITE_STEP} : ${WRITE_FIRST};`]
    : [`  $step = $size / 8; if ($step > ${READ_STEP_MAX}) { $step = ${READ_STEP_MAX}; } if ($step == 0) { $step = ${PIPE_STEP}; }`];
  return [
    `  $i = ((struct file *)${file})->f_inode; $size = (uint64)$i->i_size; $n = ${key} + (uint64)${bytes};`,
    ...step,
    `  if ($n >= $step) {`,
    `    $s = @subj[pid]; if (${s}) { $s = 1; }`,
    // what the bytes went through: 0 a file, 1 a socket, 2 a pipe
    `    $kind = ($i->i_mode & 0xf000) == 0xc000 ? 1 : (($i->i_mode & 0xf000) == 0x1000 ? 2 : 0);`,
    `    printf("Y\\t%llu\\t%d\\t%d\\t${op}\\t%d\\t%llu\\t%lu\\t%u\\t%llu\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, ${fd}, $n, $i->i_ino, $i->i_sb->s_dev, $size, $s, $kind, comm);`,
    `    delete(${key});`,
    ...(write ? [`    @wseen[pid, $i->i_sb->s_dev, $i->i_ino] = 1;`] : []),
    `  } else { ${key} = $n; }`,
  ];
}

/** a write the kernel refused for want of space (ENOSPC): a "Z" line, whoever wrote (userspace keeps the subject's) */
function enospc(file: string, fd: string, s: string): string[] {
  return [
    `  if (args->ret == -28) {`,
    `    $zi = ((struct file *)${file})->f_inode; $zs = @subj[pid]; if (${s}) { $zs = 1; }`,
    `    printf("Z\\t%llu\\t%d\\t%d\\t%d\\t%lu\\t%u\\t%d\\t%s\\n", nsecs, pid, tid, ${fd}, $zi->i_ino, $zi->i_sb->s_dev, $zs, comm);`,
    `  }`,
  ];
}

/**
 * Bytes of large files read, mapped and written, for every process on the host (the
 * weights are followed wherever they go, not only into the subject). Userspace keeps the
 * lines about registered weights and copies in progress and ignores the rest.
 *
 * Reads: read, pread64, readv, preadv, preadv2, and the source side of sendfile, splice and
 * copy_file_range. Maps: file-backed mmap, with its length (a writable shared map is a
 * write). Writes: write, pwrite64, writev, pwritev, pwritev2, sendto, sendmsg and the
 * destination side of the three, to regular files and sockets. The struct file is taken at
 * entry (reads: regular files over 1 MiB), the byte count at exit.
 */
export function byteProbes(s: string, self: number, syscalls: boolean): string[] {
  if (!Number.isInteger(self) || self < 0) throw new Error(`bad pid ${self}`);
  const not = `pid != ${self}`;
  const uring = [...uringProbes(not, s), `interval:s:${CLEAR_EVERY_S} { clear(@rb); ${syscalls ? 'clear(@mb); ' : ''}clear(@wb); clear(@wseen); }`];
  if (!syscalls) return uring;
  const readers = ['read', 'pread64', 'readv', 'preadv', 'preadv2'];
  // send() is sendto() with no address; sockets written take these two as often as write()
  const writers = ['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2', 'sendto', 'sendmsg'];
  const movers: [string, string, string][] = [['sendfile64', 'in_fd', 'out_fd'], ['splice', 'fd_in', 'fd_out'], ['copy_file_range', 'fd_in', 'fd_out']];
  // large files, and pipes: what a reader of the weights pipes on (`tar cz`, `cat | gzip`) is read from one
  const keepRead = (fd: string) => [`  ${fileOf(fd)}`, `  if ($f != 0 && ((${REGULAR} && $f->f_inode->i_size >= ${BYTES_MIN_FILE}) || ${PIPE})) { @rf[tid] = (uint64)$f; @rfd[tid] = ${fd}; }`];
  // files, sockets and pipes: a derived copy (compressed, encrypted, sent) goes to a file or
  // a socket, maybe through a pipe and another process first
  const keepWrite = (fd: string) => [`  ${fileOf(fd)}`, `  if ($f != 0 && (${REGULAR} || ${SOCKET} || ${PIPE})) { @wf[tid] = (uint64)$f; @wfd[tid] = ${fd}; }`];
  const readExit = (sys: string, op: string) => [
    `tracepoint:syscalls:sys_exit_${sys} /@rf[tid]/ {`,
    `  $rf = @rf[tid]; $rfd = @rfd[tid]; delete(@rf[tid]); delete(@rfd[tid]);`,
    `  if (args->ret > 0) {`,
    ...account('@rb', op, '$rf', 'args->ret', '$rfd', s, false).map((l) => `  ${l}`),
    `  }`,
    `}`,
  ];
  const writeExit = (sys: string, op: string) => [
    `tracepoint:syscalls:sys_exit_${sys} /@wf[tid]/ {`,
    `  $wf = @wf[tid]; $wfd = @wfd[tid]; delete(@wf[tid]); delete(@wfd[tid]);`,
    `  if (args->ret > 0) {`,
    ...account('@wb', op, '$wf', 'args->ret', '$wfd', s, true).map((l) => `  ${l}`),
    `  }`,
    ...enospc('$wf', '$wfd', s),
    `}`,
  ];
  return [
    `${readers.map((r) => `tracepoint:syscalls:sys_enter_${r}`).join(',')} /${not}/ {`,
    ...keepRead('args->fd'),
    `}`,
    ...readers.flatMap((r) => readExit(r, r === 'pread64' ? 'pread' : r)),
    `${writers.map((w) => `tracepoint:syscalls:sys_enter_${w}`).join(',')} /${not}/ {`,
    ...keepWrite('args->fd'),
    `}`,
    ...writers.flatMap((w) => writeExit(w, w === 'pwrite64' ? 'pwrite' : w)),
    // the movers read one fd and write another: both sides are kept and both get the bytes
    ...movers.flatMap(([sys, inFd, outFd]) => [
      `tracepoint:syscalls:sys_enter_${sys} /${not}/ {`,
      ...keepRead(`args->${inFd}`),
      ...keepWrite(`args->${outFd}`),
      `}`,
      `tracepoint:syscalls:sys_exit_${sys} /@rf[tid] || @wf[tid]/ {`,
      `  $rf = @rf[tid]; $rfd = @rfd[tid]; $wf = @wf[tid]; $wfd = @wfd[tid]; delete(@rf[tid]); delete(@rfd[tid]); delete(@wf[tid]); delete(@wfd[tid]);`,
      `  if (args->ret > 0 && $rf != 0) {`,
      ...account('@rb', sys === 'sendfile64' ? 'sendfile' : sys, '$rf', 'args->ret', '$rfd', s, false).map((l) => `  ${l}`),
      `  }`,
      `  if (args->ret > 0 && $wf != 0) {`,
      ...account('@wb', `${sys === 'sendfile64' ? 'sendfile' : sys}_write`, '$wf', 'args->ret', '$wfd', s, true).map((l) => `  ${l}`),
      `  }`,
      `}`,
    ]),
    // file-backed maps (not MAP_ANONYMOUS): the length mapped counts as bytes loaded; a
    // shared writable map is a write to the file (a copy written through memory)
    `tracepoint:syscalls:sys_enter_mmap /${not} && (args->flags & 0x20) == 0/ {`,
    `  ${fileOf('args->fd')}`,
    `  if ($f != 0 && ${REGULAR}) { @mf[tid] = (uint64)$f; @ml[tid] = args->len; @mfd[tid] = args->fd; @mw[tid] = (args->flags & 1) && (args->prot & 2); }`,
    `}`,
    `tracepoint:syscalls:sys_exit_mmap /@mf[tid]/ {`,
    `  $mf = @mf[tid]; $len = @ml[tid]; $mfd = @mfd[tid]; $mw = @mw[tid]; delete(@mf[tid]); delete(@ml[tid]); delete(@mfd[tid]); delete(@mw[tid]);`,
    `  if (args->ret >= 0 && $mw) {`,
    ...account('@wb', 'mmap_write', '$mf', '$len', '$mfd', s, true).map((l) => `  ${l}`),
    `  } else if (args->ret >= 0 && ((struct file *)$mf)->f_inode->i_size >= ${BYTES_MIN_FILE}) {`,
    // maps are counted as a running total, capped at the file's size: the dynamic loader
    // maps a library three times, and a file mapped whole says all there is to say
    `    $i = ((struct file *)$mf)->f_inode; $size = (uint64)$i->i_size; $old = @mb[pid, $i->i_sb->s_dev, $i->i_ino];`,
    `    if ($old < $size) {`,
    `      $n = $old + $len; if ($n > $size) { $n = $size; } @mb[pid, $i->i_sb->s_dev, $i->i_ino] = $n;`,
    `      $step = $size / 8; if ($step > ${READ_STEP_MAX}) { $step = ${READ_STEP_MAX}; }`,
    `      if ($n / $step != $old / $step) {`,
    `        $s = @subj[pid]; if (${s}) { $s = 1; }`,
    `        printf("Y\\t%llu\\t%d\\t%d\\tmmap\\t%d\\t%llu\\t%lu\\t%u\\t%llu\\t%d\\t0\\t%s\\n", nsecs, pid, tid, $mfd, $n, $i->i_ino, $i->i_sb->s_dev, $size, $s, comm);`,
    `      }`,
    `    }`,
    `  }`,
    `}`,
    ...uring,
  ];
}

// io_uring opcodes (include/uapi/linux/io_uring.h): READV, READ_FIXED, READ, READV_FIXED
const URING_READS = [1, 4, 22, 60];
// WRITEV, WRITE_FIXED, WRITE, WRITEV_FIXED; to sockets also SENDMSG, SEND, SEND_ZC, SENDMSG_ZC
const URING_WRITES = [2, 5, 23, 61];
const URING_SENDS = [9, 26, 47, 48];

/**
 * io_uring moves bytes without a read or write syscall: its completions are counted from
 * the request itself (its file and opcode) when it completes, in the submitter or in one of
 * its io-wq worker threads (same process). The fd is not known here (-1): userspace finds
 * it by inode when it needs a name.
 */
function uringProbes(not: string, s: string): string[] {
  const any = (ops: number[]) => ops.map((o) => `$op == ${o}`).join(' || ');
  return [
    `tracepoint:io_uring:io_uring_complete /${not} && args->res > 0/ {`,
    `  $r = (struct io_kiocb *)args->req; $op = $r->opcode; $uf = (uint64)$r->file; $ufd = -1;`,
    `  if ($uf != 0) {`,
    `    $um = ((struct file *)$uf)->f_inode->i_mode & 0xf000;`,
    `    if ((${any(URING_READS)}) && $um == 0x8000 && ((struct file *)$uf)->f_inode->i_size >= ${BYTES_MIN_FILE}) {`,
    ...account('@rb', 'uring_read', '$uf', 'args->res', '$ufd', s, false).map((l) => `    ${l}`),
    `    } else if (((${any(URING_WRITES)}) && ($um == 0x8000 || $um == 0xc000)) || ((${any(URING_SENDS)}) && $um == 0xc000)) {`,
    ...account('@wb', 'uring_write', '$uf', 'args->res', '$ufd', s, true).map((l) => `    ${l}`),
    `    }`,
    `  }`,
    `}`,
  ];
}
