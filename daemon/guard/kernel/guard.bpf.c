// redline's kernel guard: BPF LSM programs that refuse a subject process what would stop,
// hold, freeze, blind or rewrite its monitor, whatever the subject's privileges (it may be
// root). Always refused: signals to a monitor process, ptrace (attach, /proc/PID/mem,
// process_vm_writev, pidfd_getfd) of one, writes, truncation, removal or renaming of the
// monitor's files (by inode), the control files of cgroups other than its own, moving a
// monitor process into its own groups, bpf() and module loading. Refused in enforce mode
// only (observe records and lets them happen): signals to --protect-pid processes, ptrace of
// any other process outside the subject, moving an outside process into its groups, reboot
// and kexec (CAP_SYS_BOOT). Each refusal no other probe sees is one record on the ring
// buffer, at most one a second per (process, kind, target).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "guard.h"

#define EPERM 1
#define FMODE_WRITE 0x2
#define MAY_WRITE 0x2
#define PTRACE_MODE_ATTACH 0x02
#define CAP_SYS_BOOT 22
#define CGROUP2_MAGIC 0x63677270
#define CGROUP1_MAGIC 0x27e0eb
#define RATE_NS 1000000000ULL

const volatile struct rg_config cfg = {};

// monitor threads (the daemon, its watchdog, sensors, this guard; children they start)
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16384); __type(key, __u32); __type(value, __u8); } monitor SEC(".maps");
// --protect-pid processes (by tgid)
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, __u32); __type(value, __u8); } protect SEC(".maps");
struct rg_file { __u32 dev; __u32 pad; __u64 ino; };
// the monitor's files: log, rules, config, keys
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, struct rg_file); __type(value, __u8); } files SEC(".maps");
// the subject's processes that left its scope keep its identity (set at fork and exec)
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, __u8); } lineage SEC(".maps");
// [0]: 1 in enforce mode
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); } mode SEC(".maps");
struct rg_rate_key { __u32 pid, what, target, pad; };
struct rg_rate { __u64 last; __u32 suppressed, pad; };
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 8192); __type(key, struct rg_rate_key); __type(value, struct rg_rate); } rate SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 20); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } lost SEC(".maps");

static __always_inline int enforcing(void) {
  __u32 z = 0;
  __u32 *m = bpf_map_lookup_elem(&mode, &z);
  return m && *m;
}

static __always_inline int in_scope_cgroup(struct cgroup *cg) {
  if (!cg) return 0;
  if (cfg.subject_level == RG_EXACT) return BPF_CORE_READ(cg, kn, id) == cfg.subject_cgroup;
  if ((__u32)BPF_CORE_READ(cg, level) < cfg.subject_level) return 0;
  struct cgroup *a = 0;
  bpf_probe_read_kernel(&a, sizeof(a), &cg->ancestors[cfg.subject_level & 0xff]);
  return a && BPF_CORE_READ(a, kn, id) == cfg.subject_cgroup;
}

static __always_inline int current_subject(void) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (cfg.has_uid) { if ((__u32)bpf_get_current_uid_gid() == cfg.subject_uid) return 1; }
  else if (cfg.subject_cgroup) {
    __u64 id = cfg.subject_level == RG_EXACT ? bpf_get_current_cgroup_id() : bpf_get_current_ancestor_cgroup_id(cfg.subject_level);
    if (id == cfg.subject_cgroup) return 1;
  }
  return bpf_map_lookup_elem(&lineage, &tgid) != 0;
}

static __always_inline int task_subject(struct task_struct *t) {
  __u32 tgid = BPF_CORE_READ(t, tgid);
  if (bpf_map_lookup_elem(&lineage, &tgid)) return 1;
  if (cfg.has_uid) return BPF_CORE_READ(t, real_cred, uid.val) == cfg.subject_uid;
  return cfg.subject_cgroup && in_scope_cgroup(BPF_CORE_READ(t, cgroups, dfl_cgrp));
}

// a monitor process is never the subject's (a child the daemon started into the subject's group is the subject)
static __always_inline int task_monitor(struct task_struct *t) {
  __u32 tgid = BPF_CORE_READ(t, tgid), tid = BPF_CORE_READ(t, pid);
  if (!bpf_map_lookup_elem(&monitor, &tgid) && !bpf_map_lookup_elem(&monitor, &tid)) return 0;
  return !task_subject(t);
}

static __always_inline void emit(__u32 what, __u32 refused, __u32 target, __u32 mon, __u64 arg, const char *name) {
  __u64 id = bpf_get_current_pid_tgid();
  struct rg_rate_key k = { .pid = id >> 32, .what = what, .target = target };
  __u64 now = bpf_ktime_get_ns();
  struct rg_rate *r = bpf_map_lookup_elem(&rate, &k);
  __u32 suppressed = 0;
  if (r) {
    if (now - r->last < RATE_NS) { __sync_fetch_and_add(&r->suppressed, 1); return; }
    suppressed = r->suppressed;
    r->suppressed = 0;
    r->last = now;
  } else {
    struct rg_rate fresh = { .last = now };
    bpf_map_update_elem(&rate, &k, &fresh, BPF_ANY);
  }
  struct rg_rec *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    __u32 z = 0;
    __u64 *l = bpf_map_lookup_elem(&lost, &z);
    if (l) __sync_fetch_and_add(l, 1);
    return;
  }
  e->ns = now; e->pid = id >> 32; e->tid = (__u32)id; e->what = what; e->refused = refused; e->target = target;
  e->monitor = mon; e->arg = arg; e->suppressed = suppressed; e->pad = 0;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  e->name[0] = 0;
  if (name) bpf_probe_read_kernel_str(e->name, sizeof(e->name), name);
  bpf_ringbuf_submit(e, 0);
}

// the lineage: a process started by a subject process, or one that runs a program while a
// subject, is the subject's wherever it goes; a thread or child of a monitor process is the monitor's
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child) {
  __u32 ptgid = BPF_CORE_READ(parent, tgid), ptid = BPF_CORE_READ(parent, pid);
  __u32 ctgid = BPF_CORE_READ(child, tgid), ctid = BPF_CORE_READ(child, pid);
  __u8 one = 1;
  if (ctgid == ctid && current_subject()) bpf_map_update_elem(&lineage, &ctgid, &one, BPF_ANY);
  if (bpf_map_lookup_elem(&monitor, &ptgid) || bpf_map_lookup_elem(&monitor, &ptid)) bpf_map_update_elem(&monitor, &ctid, &one, BPF_ANY);
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p) {
  if (!current_subject()) return 0;
  __u32 tgid = BPF_CORE_READ(p, tgid), tid = BPF_CORE_READ(p, pid);
  __u8 one = 1;
  bpf_map_update_elem(&lineage, &tgid, &one, BPF_ANY);
  // the daemon's child became the subject's program: it is no monitor process
  bpf_map_delete_elem(&monitor, &tgid);
  bpf_map_delete_elem(&monitor, &tid);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p) {
  __u32 tgid = BPF_CORE_READ(p, tgid), tid = BPF_CORE_READ(p, pid);
  bpf_map_delete_elem(&monitor, &tid);
  if (tgid == tid) bpf_map_delete_elem(&lineage, &tgid);
  return 0;
}

SEC("lsm/task_kill")
int BPF_PROG(guard_kill, struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *cred) {
  if (!current_subject()) return 0;
  if (task_monitor(p)) return -EPERM;
  __u32 tgid = BPF_CORE_READ(p, tgid);
  // (the signal syscalls' probes report these with the kernel's answer)
  if (sig != 0 && enforcing() && bpf_map_lookup_elem(&protect, &tgid) && !task_subject(p)) return -EPERM;
  return 0;
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(guard_ptrace, struct task_struct *child, unsigned int how) {
  if (!(how & PTRACE_MODE_ATTACH) || !current_subject() || task_subject(child)) return 0;
  int mon = task_monitor(child);
  int refuse = mon || enforcing();
  emit(RG_PTRACE, refuse, BPF_CORE_READ(child, tgid), mon, how, 0);
  return refuse ? -EPERM : 0;
}

static __always_inline int monitor_inode(struct inode *i) {
  if (!i) return 0;
  struct rg_file k = { .dev = BPF_CORE_READ(i, i_sb, s_dev), .ino = BPF_CORE_READ(i, i_ino) };
  return bpf_map_lookup_elem(&files, &k) != 0;
}

// the group a cgroup file belongs to is the subject's own (its group, or one below it);
// a uid subject's own is the writer's current group and those below it
static __always_inline int own_group(struct dentry *dir) {
  __u64 own = cfg.has_uid ? bpf_get_current_cgroup_id() : cfg.subject_cgroup;
  for (int i = 0; i < 24 && dir; i++) {
    if (BPF_CORE_READ(dir, d_inode, i_ino) == own) return 1;
    struct dentry *up = BPF_CORE_READ(dir, d_parent);
    if (up == dir) return 0;
    dir = up;
  }
  return 0;
}

// cgroup.procs, cgroup.threads (move), cgroup.freeze, cgroup.kill (stop), cgroup.subtree_control,
// and v1's tasks and freezer.state: 1 move, 2 stop, 3 other control
static __always_inline int control_kind(const unsigned char *name) {
  char n[24] = {};
  if (bpf_probe_read_kernel_str(n, sizeof(n), name) < 0) return 0;
  if (n[0] == 't' && n[1] == 'a' && n[2] == 's' && n[3] == 'k' && n[4] == 's' && n[5] == 0) return 1;
  if (n[0] == 'f' && n[1] == 'r' && n[2] == 'e' && n[3] == 'e' && n[4] == 'z' && n[5] == 'e' && n[6] == 'r' && n[7] == '.' && n[8] == 's') return 2;
  if (!(n[0] == 'c' && n[1] == 'g' && n[2] == 'r' && n[3] == 'o' && n[4] == 'u' && n[5] == 'p' && n[6] == '.')) return 0;
  if (n[7] == 'p' && n[8] == 'r' && n[9] == 'o' && n[10] == 'c' && n[11] == 's' && n[12] == 0) return 1;
  if (n[7] == 't' && n[8] == 'h' && n[9] == 'r' && n[10] == 'e' && n[11] == 'a' && n[12] == 'd' && n[13] == 's' && n[14] == 0) return 1;
  if (n[7] == 'k' && n[8] == 'i' && n[9] == 'l' && n[10] == 'l' && n[11] == 0) return 2;
  if (n[7] == 'f' && n[8] == 'r' && n[9] == 'e' && n[10] == 'e' && n[11] == 'z' && n[12] == 'e' && n[13] == 0) return 2;
  if (n[7] == 's' && n[8] == 'u' && n[9] == 'b' && n[10] == 't' && n[11] == 'r' && n[12] == 'e' && n[13] == 'e') return 3;
  return 0;
}

SEC("lsm/file_open")
int BPF_PROG(guard_open, struct file *file) {
  if (!(BPF_CORE_READ(file, f_mode) & FMODE_WRITE) || !current_subject()) return 0;
  struct inode *i = BPF_CORE_READ(file, f_inode);
  if (monitor_inode(i)) return -EPERM;
  __u64 magic = BPF_CORE_READ(i, i_sb, s_magic);
  if (magic != CGROUP2_MAGIC && magic != CGROUP1_MAGIC) return 0;
  struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
  const unsigned char *name = BPF_CORE_READ(d, d_name.name);
  int kind = control_kind(name);
  if (!kind) return 0;
  // (the open's own probe reports the refusal, with the path)
  if (magic == CGROUP1_MAGIC || !own_group(BPF_CORE_READ(d, d_parent))) return -EPERM;
  if (kind == 2) emit(RG_CGROUP_OWN, 0, 0, 0, BPF_CORE_READ(d, d_parent, d_inode, i_ino), (const char *)name);
  return 0;
}

// a write to the subject's own cgroup.procs or cgroup.threads: the pid it moves in is read
// from the writer's buffer (write and pwrite64; any other way of writing there is refused)
SEC("lsm/file_permission")
int BPF_PROG(guard_write, struct file *file, int mask) {
  if (!(mask & MAY_WRITE)) return 0;
  struct inode *i = BPF_CORE_READ(file, f_inode);
  if (BPF_CORE_READ(i, i_sb, s_magic) != CGROUP2_MAGIC || !current_subject()) return 0;
  struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
  const unsigned char *name = BPF_CORE_READ(d, d_name.name);
  if (control_kind(name) != 1) return 0;
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
  long nr = BPF_CORE_READ(regs, orig_ax);
  __u64 group = BPF_CORE_READ(d, d_parent, d_inode, i_ino);
  if (nr != 1 && nr != 18) { emit(RG_MOVE, 1, 0, 0, group, (const char *)name); return -EPERM; }
  char buf[16] = {};
  __u64 len = BPF_CORE_READ(regs, dx);
  if (len > sizeof(buf) - 1) len = sizeof(buf) - 1;
  if (bpf_probe_read_user(buf, len & 15, (void *)BPF_CORE_READ(regs, si)) < 0) { emit(RG_MOVE, 1, 0, 0, group, (const char *)name); return -EPERM; }
  __u32 pid = 0;
  int j = 0;
  for (; j < 15 && (buf[j] == ' ' || buf[j] == '\t'); j++) {}
  for (; j < 15 && buf[j] >= '0' && buf[j] <= '9'; j++) pid = pid * 10 + (buf[j] - '0');
  __u32 self = bpf_get_current_pid_tgid() >> 32;
  if (pid == 0 || pid == self || bpf_map_lookup_elem(&lineage, &pid)) return 0;
  int mon = bpf_map_lookup_elem(&monitor, &pid) != 0;
  int refuse = mon || enforcing();
  emit(RG_MOVE, refuse, pid, mon, group, (const char *)name);
  return refuse ? -EPERM : 0;
}

SEC("lsm/path_truncate")
int BPF_PROG(guard_truncate, const struct path *path) {
  if (!current_subject()) return 0;
  return monitor_inode(BPF_CORE_READ(path, dentry, d_inode)) ? -EPERM : 0;
}

SEC("lsm/inode_unlink")
int BPF_PROG(guard_unlink, struct inode *dir, struct dentry *dentry) {
  if (!current_subject()) return 0;
  return monitor_inode(BPF_CORE_READ(dentry, d_inode)) ? -EPERM : 0;
}

SEC("lsm/inode_rename")
int BPF_PROG(guard_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir, struct dentry *new_dentry) {
  if (!current_subject()) return 0;
  return monitor_inode(BPF_CORE_READ(old_dentry, d_inode)) || monitor_inode(BPF_CORE_READ(new_dentry, d_inode)) ? -EPERM : 0;
}

SEC("lsm/bpf")
int BPF_PROG(guard_bpf, int cmd) {
  if (!current_subject()) return 0;
  emit(RG_BPF, 1, 0, 0, cmd, 0);
  return -EPERM;
}

SEC("lsm/kernel_read_file")
int BPF_PROG(guard_module_file, struct file *file, enum kernel_read_file_id id) {
  if (id != READING_MODULE || !current_subject()) return 0;
  emit(RG_MODULE, 1, 0, 0, 0, 0);
  return -EPERM;
}

SEC("lsm/kernel_load_data")
int BPF_PROG(guard_module_data, enum kernel_load_data_id id) {
  if (id != LOADING_MODULE || !current_subject()) return 0;
  emit(RG_MODULE, 1, 0, 0, 0, 0);
  return -EPERM;
}

// reboot(2) and kexec: the reboot probes report the attempt and the kernel's answer
SEC("lsm/capable")
int BPF_PROG(guard_capable, const struct cred *cred, struct user_namespace *ns, int cap) {
  if (cap != CAP_SYS_BOOT || !enforcing() || !current_subject()) return 0;
  return -EPERM;
}

char LICENSE[] SEC("license") = "GPL";
