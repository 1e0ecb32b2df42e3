// redline-enter: how `redline exec` starts its subject. It joins the trial's cgroup, installs
// a seccomp filter that no process of the subject can remove (root included: filters are
// inherited across fork and exec, and only ever added to), then runs the command.
//
// The filter refuses (EPERM), whatever the subject's privileges:
//   - every signal syscall aimed at a monitor process or thread (kill, tkill, tgkill,
//     rt_sigqueueinfo, rt_tgsigqueueinfo), kill(-1) (it reaches every process), kill(-PGID)
//     of a monitor's process group, and pidfd_open of a monitor process (a pidfd signals,
//     steals fds, advises memory);
//   - ptrace and process_vm_writev of a monitor process, and the calls that starve or move
//     one (sched_setscheduler/param/attr/affinity, setpriority, ioprio_set, prlimit64,
//     migrate_pages, move_pages);
//   - bpf() (it could detach the probes), init_module, finit_module, delete_module;
//   - in enforce mode also: signals and ptrace aimed at --protect-pid processes, reboot,
//     kexec_load, kexec_file_load.
// Its argument checks compare numbers only: the monitor's files and cgroup control files are
// named by pointers it cannot read. Those stay with the BPF LSM guard (where the kernel lets
// it load) and with detection.
// usage: redline-enter GROUP_DIR [-m PID,...] [-p PID,...] [-e] -- CMD [ARGS...]
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_IDS 250
#define MAX_INSNS 4000

struct ids { unsigned n; unsigned v[MAX_IDS]; };
static struct sock_filter prog[MAX_INSNS];
static unsigned len;

static void add(struct ids *s, unsigned v) {
  for (unsigned i = 0; i < s->n; i++) if (s->v[i] == v) return;
  if (s->n < MAX_IDS) s->v[s->n++] = v;
}

static void emit(struct sock_filter f) {
  if (len >= MAX_INSNS) { fprintf(stderr, "redline-enter: the filter is too long\n"); exit(125); }
  prog[len++] = f;
}

// nr's argument `arg` (its low 32 bits: pids are ints) in `set`: EPERM; any other value: allowed
static void guard_arg(int nr, int arg, const struct ids *set) {
  if (set->n == 0) return;
  unsigned k = set->n;
  // [jeq nr] [ld arg] k × [jeq v → deny] [ret allow] [ret deny]
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, (unsigned char)(k + 3)));
  emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args) + 8 * arg));
  for (unsigned i = 0; i < k; i++) emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, set->v[i], (unsigned char)(k - i), 0));
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
  // (the nr is loaded again for the next block)
  emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
}

static void deny(int nr) {
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1));
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
}

// a process, its threads now, and (negated) its process group
static void add_process(struct ids *procs, struct ids *threads, struct ids *groups, unsigned pid) {
  add(procs, pid);
  add(threads, pid);
  char path[64];
  snprintf(path, sizeof(path), "/proc/%u/task", pid);
  DIR *d = opendir(path);
  if (d) {
    for (struct dirent *e; (e = readdir(d));) { unsigned t = (unsigned)strtoul(e->d_name, NULL, 10); if (t) add(threads, t); }
    closedir(d);
  }
  pid_t pg = getpgid((pid_t)pid);
  if (pg > 1 && pg != getpgid(0)) add(groups, (unsigned)-pg);
}

static void parse_list(const char *s, struct ids *procs, struct ids *threads, struct ids *groups) {
  for (char *end; *s; s = *end ? end + 1 : end) {
    unsigned long v = strtoul(s, &end, 10);
    if (end == s) break;
    if (v > 0) add_process(procs, threads, groups, (unsigned)v);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: redline-enter GROUP_DIR [-m PIDS] [-p PIDS] [-e] -- CMD [ARGS...]\n"); return 125; }
  static struct ids mon, mon_threads, mon_groups, prot, prot_threads, prot_groups;
  int enforce = 0, i = 2;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) parse_list(argv[++i], &mon, &mon_threads, &mon_groups);
    else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) parse_list(argv[++i], &prot, &prot_threads, &prot_groups);
    else if (strcmp(argv[i], "-e") == 0) enforce = 1;
    else { fprintf(stderr, "redline-enter: unknown option %s\n", argv[i]); return 125; }
  }
  if (i + 1 >= argc) { fprintf(stderr, "redline-enter: no command\n"); return 125; }
  char **cmd = argv + i + 1;

  char procs[4096];
  snprintf(procs, sizeof(procs), "%s/cgroup.procs", argv[1]);
  FILE *f = fopen(procs, "w");
  if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f) != 0) { fprintf(stderr, "redline-enter: cannot join %s: %s\n", argv[1], strerror(errno)); return 125; }

  // kill(-1) reaches the monitor too; in enforce mode the protected processes join the lists
  struct ids kill_targets = mon;
  for (unsigned k = 0; k < mon_groups.n; k++) add(&kill_targets, mon_groups.v[k]);
  add(&kill_targets, (unsigned)-1);
  struct ids threads = mon_threads, tracees = mon;
  if (enforce) {
    for (unsigned k = 0; k < prot.n; k++) { add(&kill_targets, prot.v[k]); add(&tracees, prot.v[k]); }
    for (unsigned k = 0; k < prot_groups.n; k++) add(&kill_targets, prot_groups.v[k]);
    for (unsigned k = 0; k < prot_threads.n; k++) add(&threads, prot_threads.v[k]);
  }

  emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  // another ABI (i386 through int 0x80) names the calls by other numbers: refused outright
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
  emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  // x32's calls have bit 30 set
  emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
  guard_arg(SYS_kill, 0, &kill_targets);
  guard_arg(SYS_tkill, 0, &threads);
  guard_arg(SYS_tgkill, 0, &tracees);
  guard_arg(SYS_rt_sigqueueinfo, 0, &tracees);
  guard_arg(SYS_rt_tgsigqueueinfo, 0, &tracees);
  guard_arg(SYS_pidfd_open, 0, &mon);
  guard_arg(SYS_ptrace, 1, &tracees);
  guard_arg(SYS_process_vm_writev, 0, &mon);
  guard_arg(SYS_sched_setscheduler, 0, &mon_threads);
  guard_arg(SYS_sched_setparam, 0, &mon_threads);
  guard_arg(SYS_sched_setattr, 0, &mon_threads);
  guard_arg(SYS_sched_setaffinity, 0, &mon_threads);
  guard_arg(SYS_setpriority, 1, &mon_threads);
  guard_arg(SYS_ioprio_set, 1, &mon_threads);
  guard_arg(SYS_prlimit64, 0, &mon);
  guard_arg(SYS_migrate_pages, 0, &mon);
  guard_arg(SYS_move_pages, 0, &mon);
  deny(SYS_bpf);
  deny(SYS_init_module);
  deny(SYS_finit_module);
  deny(SYS_delete_module);
  if (enforce) {
    deny(SYS_reboot);
    deny(SYS_kexec_load);
    deny(SYS_kexec_file_load);
  }
  emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));

  struct sock_fprog fp = { .len = (unsigned short)len, .filter = prog };
  // root (the daemon's child) may install it without no_new_privs: setuid programs keep working
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0) {
      fprintf(stderr, "redline-enter: cannot install the seccomp filter: %s\n", strerror(errno));
      return 125;
    }
  }
  execvp(cmd[0], cmd);
  fprintf(stderr, "redline-enter: cannot run %s: %s\n", cmd[0], strerror(errno));
  return 127;
}
