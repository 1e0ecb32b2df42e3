// redline's byte accounting of large files, host-wide, as one raw tracepoint program on
// sys_exit (x86_64): the syscall's number and arguments are read from the registers saved at
// entry, so there is no entry probe and no per-thread map. Its records are the "Y" lines of
// the bpftrace byte probes it replaces (script.ts, byteProbes): same thresholds, same fields.
// Why: bench/loader-floor.ts (bpftrace's entry/exit pair costs about twice as much per
// syscall, and is most of the workload's slowdown under the eBPF sensor).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "config.h"

#define MIN_FILE (1ULL << 20)
#define READ_STEP_MAX (64ULL << 20)
#define WRITE_FIRST (1ULL << 20)
#define WRITE_STEP (16ULL << 20)
#define PIPE_STEP (4ULL << 20)
// a reader of the weights (also through a pipe) writes in smaller steps after its first MiB: a
// small model written out in chunks must still show its bytes before the writer exits
#define READER_WRITE_STEP (4ULL << 20)
// reads of the registered weights themselves are reported in steps of at most this: a reader that
// writes them out in another form is a derived copy in progress once 16 MiB went each way
// (daemon/analyze/weights/loads.ts EARLY_DERIVED_BYTES), not only after an eighth of the model
#define WEIGHTS_READ_STEP (16ULL << 20)

const volatile struct rl_config cfg = {};

struct rl_key { __u32 pid; __u32 dev; __u64 ino; };
// bytes not yet reported per (process, device, inode), and whether a line went out already
// (writes: the first at 1 MiB, then each 16 MiB). LRU: the maps never outgrow their size.
struct rl_count { __u64 n; __u64 seen; };
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 65536); __type(key, struct rl_key); __type(value, struct rl_count); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 65536); __type(key, struct rl_key); __type(value, struct rl_count); } wb SEC(".maps");
// maps of a file: a running total, capped at its size
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 65536); __type(key, struct rl_key); __type(value, __u64); } mb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 22); } events SEC(".maps");
// the copy gate (enforce mode) and the pin: the protected weights' inodes (told by the daemon),
// the processes that read them (1: the subject's, 2: outside it), and whether to hold a subject
// reader's first MiB written ([0]: 1 in enforce mode)
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, struct rl_key); __type(value, __u8); } weights SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 16384); __type(key, __u32); __type(value, __u8); } readers SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); } gating SEC(".maps");
// pipes and local sockets a reader of the weights wrote into (pid 0, dev, ino): whoever reads
// one is a reader too, through any number of pipes
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 4096); __type(key, struct rl_key); __type(value, __u8); } carrying SEC(".maps");
// records the ring buffer had no room for: the loader reports them
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } lost SEC(".maps");

// the subject's own scope, as emit() says it
static __always_inline __u32 in_subject(void) {
  if (cfg.has_uid) return (__u32)bpf_get_current_uid_gid() == cfg.subject_uid;
  if (cfg.subject_level == RL_EXACT) return cfg.subject_cgroup != 0 && bpf_get_current_cgroup_id() == cfg.subject_cgroup;
  return cfg.subject_cgroup != 0 && bpf_get_current_ancestor_cgroup_id(cfg.subject_level) == cfg.subject_cgroup;
}

static __always_inline struct file *file_of(__u64 fd) {
  struct task_struct *t = (struct task_struct *)bpf_get_current_task();
  struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
  if (fd >= BPF_CORE_READ(fdt, max_fds)) return 0;
  struct file **slots = BPF_CORE_READ(fdt, fd);
  struct file *f = 0;
  bpf_probe_read_kernel(&f, sizeof(f), slots + fd);
  return f;
}

/* a record of this thread's, stamped (time, pid, tid, op); NULL when the ring is full, the loss counted */
static __always_inline struct rl_rec *record(__u32 op) {
  struct rl_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
  if (!r) {
    __u32 z = 0;
    __u64 *l = bpf_map_lookup_elem(&lost, &z);
    if (l) __sync_fetch_and_add(l, 1);
    return NULL;
  }
  __u64 id = bpf_get_current_pid_tgid();
  r->ns = bpf_ktime_get_ns(); r->pid = id >> 32; r->tid = (__u32)id; r->op = op;
  return r;
}

static __always_inline void emit(struct rl_key *k, __s32 fd, __u64 n, __u32 op, __u64 size, __u16 mode) {
  struct rl_rec *r = record(op);
  if (!r) return;
  r->fd = fd; r->n = n; r->ino = k->ino; r->dev = k->dev; r->size = size;
  // the subject's scope as the kernel sees it; userspace adds the processes that left it
  if (cfg.has_uid) r->subj = (__u32)bpf_get_current_uid_gid() == cfg.subject_uid;
  // the group itself or one below it (its ancestor at the group's level is the group); with
  // no level given (RL_EXACT), the group alone
  else if (cfg.subject_level == RL_EXACT) r->subj = cfg.subject_cgroup != 0 && bpf_get_current_cgroup_id() == cfg.subject_cgroup;
  else r->subj = cfg.subject_cgroup != 0 && bpf_get_current_ancestor_cgroup_id(cfg.subject_level) == cfg.subject_cgroup;
  __u16 m = mode & 0xf000;
  r->kind = (m == 0xc000 ? 1 : (m == 0x1000 ? 2 : 0)) | (mode & 0x0800 ? 4 : 0);
  bpf_get_current_comm(r->comm, sizeof(r->comm));
  bpf_ringbuf_submit(r, 0);
}

// reads: large regular files, and pipes (what a reader of the weights pipes on is read from
// one); writes: regular files, sockets and pipes (a derived copy may go any of these ways)
// a process reading the weights (the daemon's weights map, by device and inode, the pid left
// out) becomes a reader: 1, the subject's (its first MiB written anywhere is held by the gate);
// 2, one outside it (its first MiB written to a regular file is held a moment, in either mode,
// so that the daemon can open the file before a short-lived writer is gone: the pin)
static __always_inline void become_reader(void) {
  __u32 pid = bpf_get_current_pid_tgid() >> 32;
  if (pid == cfg.self_pid) return;
  __u8 v = in_subject() ? 1 : 2;
  __u8 *was = bpf_map_lookup_elem(&readers, &pid);
  if (was && *was == 1) return;
  bpf_map_update_elem(&readers, &pid, &v, BPF_ANY);
}

static __always_inline int read_weights(__u32 dev, __u64 ino) {
  struct rl_key w = { .pid = 0, .dev = dev, .ino = ino };
  if (!bpf_map_lookup_elem(&weights, &w)) return 0;
  become_reader();
  return 1;
}

// a pipe (or local socket) a reader wrote a step (1 MiB) into carries the weights; its reader becomes one
static __always_inline void through_pipe(struct rl_key *k, int write) {
  struct rl_key p = { .pid = 0, .dev = k->dev, .ino = k->ino };
  if (!write) {
    if (bpf_map_lookup_elem(&carrying, &p)) become_reader();
    return;
  }
  __u32 pid = k->pid;
  if (!bpf_map_lookup_elem(&readers, &pid)) return;
  __u8 one = 1;
  bpf_map_update_elem(&carrying, &p, &one, BPF_ANY);
}

// the hold: a subject reader of the weights that has written its first MiB to one file, socket
// or pipe is stopped (SIGSTOP, at this syscall's exit) until the daemon has judged that MiB (the
// gate, enforce mode): it resumes it (SIGCONT) or freezes the subject. A reader outside the
// subject is stopped at its first MiB to a regular file until the daemon holds the file open
// (the pin): it is resumed at once after.
static __always_inline int hold(__u16 mode) {
  __u32 z = 0, pid = bpf_get_current_pid_tgid() >> 32;
  __u8 *r = bpf_map_lookup_elem(&readers, &pid);
  if (!r) return 0;
  if (*r == 2) {
    if (mode != 0x8000) return 0;
  } else {
    __u32 *on = bpf_map_lookup_elem(&gating, &z);
    if (!on || !*on) return 0;
  }
  return bpf_send_signal(19) == 0;
}

// A local (AF_UNIX) socket between two processes carries bytes as a pipe does: counted as a
// pipe, both ends under one inode, the writer's (its own socket's; the reader's peer's). 0 when
// it is no connected local socket.
static __always_inline __u64 local_socket_ino(struct file *f, int write) {
  struct socket *so = (struct socket *)BPF_CORE_READ(f, private_data);
  struct sock *sk = BPF_CORE_READ(so, sk);
  if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != 1) return 0;
  if (write) return BPF_CORE_READ(f, f_inode, i_ino);
  struct sock *peer = BPF_CORE_READ((struct unix_sock *)sk, peer);
  if (!peer) return 0;
  struct socket *ps = BPF_CORE_READ(peer, sk_socket);
  if (!ps) return 0;
  return BPF_CORE_READ(ps, file, f_inode, i_ino);
}

static __always_inline void account(struct file *f, __s32 fd, __u64 bytes, __u32 op, int write) {
  struct inode *i = BPF_CORE_READ(f, f_inode);
  __u16 mode = BPF_CORE_READ(i, i_mode) & 0xf000;
  __u64 size = BPF_CORE_READ(i, i_size);
  __u64 ino = BPF_CORE_READ(i, i_ino);
  if (mode == 0xc000) {
    __u64 local = local_socket_ino(f, write);
    if (local) { ino = local; mode = 0x1000; }
  }
  if (write) { if (mode != 0x8000 && mode != 0xc000 && mode != 0x1000) return; }
  else if (!((mode == 0x8000 && size >= MIN_FILE) || mode == 0x1000)) return;
  struct rl_key k = { .pid = bpf_get_current_pid_tgid() >> 32, .dev = BPF_CORE_READ(i, i_sb, s_dev), .ino = ino };
  int weights = !write && mode == 0x8000 && read_weights(k.dev, k.ino);
  // a pipe's reader is marked at each read; the pipe itself only once a reader has written a
  // step into it (a server's log lines into a pipe or socket make no reader of what reads them)
  if (mode == 0x1000 && !write) through_pipe(&k, 0);
  void *map = write ? (void *)&wb : (void *)&rb;
  struct rl_count *c = bpf_map_lookup_elem(map, &k);
  if (!c) {
    struct rl_count fresh = { 0, 0 };
    bpf_map_update_elem(map, &k, &fresh, BPF_NOEXIST);
    c = bpf_map_lookup_elem(map, &k);
    if (!c) return;
  }
  __u64 n = c->n + bytes, step;
  // (the readers map is asked only when the answer matters: between the two steps, not on every write)
  if (write) step = !c->seen ? WRITE_FIRST : n >= READER_WRITE_STEP && n < WRITE_STEP && bpf_map_lookup_elem(&readers, &k.pid) ? READER_WRITE_STEP : WRITE_STEP;
  else {
    step = size / 8;
    if (step > READ_STEP_MAX) step = READ_STEP_MAX;
    if (weights && step > WEIGHTS_READ_STEP) step = WEIGHTS_READ_STEP;
    if (step == 0) step = PIPE_STEP;
  }
  if (n < step) { c->n = n; return; }
  int first = write && !c->seen;
  c->n = 0; c->seen = 1;
  if (write && mode == 0x1000) through_pipe(&k, 1);
  emit(&k, fd, n, op, size, first && hold(mode) ? mode | 0x0800 : mode);
}

// file-backed mmap: the length mapped counts as bytes loaded (a running total capped at the
// file's size: the dynamic loader maps a library three times); a shared writable map is a write
static __always_inline void mapped(struct pt_regs *regs) {
  __u64 flags = BPF_CORE_READ(regs, r10);
  if (flags & 0x20) return; // MAP_ANONYMOUS
  __u64 fd = BPF_CORE_READ(regs, r8), len = BPF_CORE_READ(regs, si), prot = BPF_CORE_READ(regs, dx);
  struct file *f = file_of(fd);
  if (!f) return;
  struct inode *i = BPF_CORE_READ(f, f_inode);
  __u16 mode = BPF_CORE_READ(i, i_mode) & 0xf000;
  if (mode != 0x8000) return;
  if ((flags & 1) && (prot & 2)) { account(f, (__s32)fd, len, RL_MMAP_W, 1); return; }
  __u64 size = BPF_CORE_READ(i, i_size);
  if (size < MIN_FILE) return;
  struct rl_key k = { .pid = bpf_get_current_pid_tgid() >> 32, .dev = BPF_CORE_READ(i, i_sb, s_dev), .ino = BPF_CORE_READ(i, i_ino) };
  read_weights(k.dev, k.ino);
  __u64 *oldp = bpf_map_lookup_elem(&mb, &k);
  __u64 old = oldp ? *oldp : 0;
  if (old >= size) return;
  __u64 n = old + len;
  if (n > size) n = size;
  bpf_map_update_elem(&mb, &k, &n, BPF_ANY);
  __u64 step = size / 8;
  if (step > READ_STEP_MAX) step = READ_STEP_MAX;
  if (n / step != old / step) emit(&k, (__s32)fd, n, RL_MMAP, size, mode);
}

// the daemon's kill(itself, 0), echoed in order with the records: once the daemon reads the
// echo, it has read every record before it (how it drains the loader at a trial's end)
static __always_inline void echo(struct pt_regs *regs) {
  __u32 self = cfg.self_pid;
  if ((bpf_get_current_pid_tgid() >> 32) != self || BPF_CORE_READ(regs, di) != self || BPF_CORE_READ(regs, si) != 0) return;
  struct rl_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
  if (!r) return; // no echo: the daemon's ping times out and says so
  __u64 id = bpf_get_current_pid_tgid();
  r->ns = bpf_ktime_get_ns(); r->pid = id >> 32; r->tid = (__u32)id; r->op = RL_PING;
  bpf_ringbuf_submit(r, 0);
}

// a write the kernel refused for want of space (ENOSPC), whoever wrote: userspace keeps the
// subject's (system.damage: a filesystem filled)
static __always_inline void no_space(struct pt_regs *regs) {
  long nr = BPF_CORE_READ(regs, orig_ax);
  __u64 fd;
  switch (nr) {
    case 1: case 18: case 20: case 296: case 328: case 40: case 285: fd = BPF_CORE_READ(regs, di); break; // write…, sendfile(out), fallocate
    case 275: case 326: fd = BPF_CORE_READ(regs, dx); break; // splice, copy_file_range: the fd written
    default: return;
  }
  if ((bpf_get_current_pid_tgid() >> 32) == cfg.self_pid) return;
  struct file *f = file_of(fd);
  if (!f) return;
  struct inode *i = BPF_CORE_READ(f, f_inode);
  struct rl_key k = { .pid = bpf_get_current_pid_tgid() >> 32, .dev = BPF_CORE_READ(i, i_sb, s_dev), .ino = BPF_CORE_READ(i, i_ino) };
  emit(&k, (__s32)fd, 0, RL_ENOSPC, BPF_CORE_READ(i, i_size), BPF_CORE_READ(i, i_mode) & 0xf000);
}

// the signal and reboot calls: bpftrace reports each that reached its entry tracepoint; one the
// seccomp filter refused never did (seccomp runs first), and only the loader sees it, at exit
static __always_inline int signal_or_reboot(long nr) {
  return nr == 62 || nr == 200 || nr == 234 || nr == 129 || nr == 297 || nr == 424 || nr == 169 || nr == 246 || nr == 320;
}
// subject threads inside one of those calls, marked at its entry
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 16384); __type(key, __u32); __type(value, __u8); } entered SEC(".maps");

// the doors to the monitor and to other processes that no signal syscall shows: ptrace
// (attach, seize, kill, or any request refused), bpf() and module loads; and the calls the
// subject's seccomp filter refused (EPERM) on pids: the signal syscalls (a refused call never
// reaches its entry tracepoint, so bpftrace's signal probes do not see it), reboot and kexec,
// pidfd_open, process_vm_writev
static __always_inline void attempt(struct pt_regs *regs, long nr, long ret) {
  __u64 a0 = BPF_CORE_READ(regs, di), a1 = BPF_CORE_READ(regs, si), a2 = BPF_CORE_READ(regs, dx);
  if (nr == 101 && ret == 0 && a0 != 16 && a0 != 0x4206 && a0 != 8) return; // ptrace: attach, seize, kill
  if (nr != 101 && nr != 321 && nr != 175 && nr != 313 && nr != 176 && ret != -1) return;
  if (!in_subject()) return;
  struct rl_rec *r = record(RL_ATTEMPT);
  if (!r) return;
  r->n = nr; r->fd = (__s32)ret; r->ino = a0; r->size = a1; r->subj = 1; r->kind = 0; r->dev = (__u32)a2;
  bpf_get_current_comm(r->comm, sizeof(r->comm));
  bpf_ringbuf_submit(r, 0);
}

SEC("raw_tracepoint/sys_exit")
int on_sys_exit(struct bpf_raw_tracepoint_args *ctx) {
  long ret = (long)ctx->args[1];
  {
    long nr = BPF_CORE_READ((struct pt_regs *)ctx->args[0], orig_ax);
    if (nr == 101 || nr == 321 || nr == 175 || nr == 313 || nr == 176 || nr == 434 || nr == 311 || nr == 62 || nr == 200 || nr == 234 || nr == 129 || nr == 297 || nr == 424 || nr == 169 || nr == 246 || nr == 320) {
      if (signal_or_reboot(nr)) {
        __u32 tid = (__u32)bpf_get_current_pid_tgid();
        if (bpf_map_lookup_elem(&entered, &tid)) {
          // it ran: bpftrace's probes report it
          bpf_map_delete_elem(&entered, &tid);
          return 0;
        }
      }
      // (the daemon's kill(itself, 0) is echoed)
      if (nr == 62 && ret >= 0) echo((struct pt_regs *)ctx->args[0]);
      else attempt((struct pt_regs *)ctx->args[0], nr, ret);
      return 0;
    }
  }
  if (ret < 0) {
    if (ret == -28) no_space((struct pt_regs *)ctx->args[0]);
    return 0;
  }
  struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
  long nr = BPF_CORE_READ(regs, orig_ax);
  if (nr == 62) { echo(regs); return 0; } // kill
  if (ret == 0) return 0;
  __u32 op;
  int write = 0, mover = 0;
  switch (nr) {
    case 0: op = RL_READ; break;
    case 17: op = RL_PREAD; break;
    case 19: op = RL_READV; break;
    case 295: op = RL_PREADV; break;
    case 327: op = RL_PREADV2; break;
    case 1: op = RL_WRITE; write = 1; break;
    case 18: op = RL_PWRITE; write = 1; break;
    case 20: op = RL_WRITEV; write = 1; break;
    case 296: op = RL_PWRITEV; write = 1; break;
    case 328: op = RL_PWRITEV2; write = 1; break;
    case 44: op = RL_SENDTO; write = 1; break;
    case 46: op = RL_SENDMSG; write = 1; break;
    case 40: op = RL_SENDFILE; mover = 1; break;
    case 275: op = RL_SPLICE; mover = 2; break;
    case 326: op = RL_CFR; mover = 2; break;
    // recv() is recvfrom(): what a local socket carries is read this way as often as read()
    case 45: op = RL_RECVFROM; break;
    case 47: op = RL_RECVMSG; break;
    case 9: op = RL_MMAP; break;
    default: return 0;
  }
  if ((bpf_get_current_pid_tgid() >> 32) == cfg.self_pid) return 0;
  if (op == RL_MMAP) { mapped(regs); return 0; }
  __u64 di = BPF_CORE_READ(regs, di);
  if (!mover) {
    struct file *f = file_of(di);
    if (f) account(f, (__s32)di, ret, op, write);
    return 0;
  }
  // the movers read one fd and write another: sendfile(out, in, …); splice and
  // copy_file_range(in, _, out, …)
  __u64 in = mover == 1 ? BPF_CORE_READ(regs, si) : di;
  __u64 out = mover == 1 ? di : BPF_CORE_READ(regs, dx);
  struct file *fi = file_of(in);
  if (fi) account(fi, (__s32)in, ret, op, 0);
  struct file *fo = file_of(out);
  if (fo) account(fo, (__s32)out, ret, op + 1, 1);
  return 0;
}

// The gate's other half: sendfile, splice and copy_file_range move the bytes inside the kernel,
// a whole model in one call, and a stop (or a cgroup freeze) takes effect only when the call
// returns. When the gate is on and a subject process starts such a call from the weights, it
// gets SIGKILL at entry: the page cache reads in the call stop at the fatal signal, and only
// the pages already moved reach the copy.
SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx) {
  long nr = (long)ctx->args[1];
  if (signal_or_reboot(nr)) {
    if (in_subject()) {
      __u32 tid = (__u32)bpf_get_current_pid_tgid();
      __u8 one = 1;
      bpf_map_update_elem(&entered, &tid, &one, BPF_ANY);
    }
    return 0;
  }
  if (nr != 40 && nr != 275 && nr != 326) return 0;
  __u32 z = 0;
  __u32 *on = bpf_map_lookup_elem(&gating, &z);
  if (!on || !*on || !in_subject()) return 0;
  struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
  __u64 in = nr == 40 ? BPF_CORE_READ(regs, si) : BPF_CORE_READ(regs, di);
  struct file *f = file_of(in);
  if (!f) return 0;
  struct inode *i = BPF_CORE_READ(f, f_inode);
  struct rl_key w = { .pid = 0, .dev = BPF_CORE_READ(i, i_sb, s_dev), .ino = BPF_CORE_READ(i, i_ino) };
  if (!bpf_map_lookup_elem(&weights, &w)) return 0;
  bpf_send_signal(9);
  struct rl_rec *r = record(RL_CUT);
  if (!r) return 0;
  r->n = nr; r->fd = (__s32)in; r->ino = w.ino; r->dev = w.dev; r->size = BPF_CORE_READ(i, i_size); r->subj = 1; r->kind = 0;
  bpf_get_current_comm(r->comm, sizeof(r->comm));
  bpf_ringbuf_submit(r, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
