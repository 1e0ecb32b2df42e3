// redline-guard: loads guard.bpf.o, attaches its BPF LSM programs, prints REDLINE-GUARD-READY,
// then one tab-separated "K" line per record. It takes its lists on stdin, one per line:
//   m PID      a monitor process (all its threads)     p PID   a --protect-pid process
//   f PATH     a monitor file (by its inode)           e 0|1   observe or enforce mode
// and answers each line with "ok LINE" or "error LINE: why". It registers itself as a
// monitor process first. It stops when its stdin closes or its parent dies (PR_SET_PDEATHSIG),
// and with it the guard: links are not pinned, so a guard that is gone refuses nothing.
// usage: redline-guard BPF_OBJECT cgroup:ID[:LEVEL]|uid:UID
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/types.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "guard.h"
#include "program-common.h"

static const char *WHAT[] = { "", "ptrace", "bpf", "module", "move", "cgroup_own" };
static int monitor_fd, protect_fd, files_fd, mode_fd;

static int on_rec(void *ctx, void *data, size_t len) {
  (void)ctx;
  const struct rg_rec *r = data;
  if (len < sizeof(*r) || r->what < 1 || r->what > 5) return 0;
  char comm[17], name[33];
  memcpy(comm, r->comm, 16);
  comm[16] = 0;
  memcpy(name, r->name, 32);
  name[32] = 0;
  for (char *c = comm; *c; c++) if (*c == '\t' || *c == '\n') *c = ' ';
  for (char *c = name; *c; c++) if (*c == '\t' || *c == '\n') *c = ' ';
  printf("K\t%llu\t%u\t%u\t%s\t%u\t%u\t%u\t%llu\t%u\t%s\t%s\n", (unsigned long long)r->ns, r->pid, r->tid, WHAT[r->what], r->refused, r->target, r->monitor,
         (unsigned long long)r->arg, r->suppressed, name, comm);
  return 0;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap) {
  return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static int put(int fd, const void *key) {
  __u8 one = 1;
  return bpf_map_update_elem(fd, key, &one, BPF_ANY);
}

// a process and every thread it has now (threads started later are added in the kernel)
static int add_monitor(__u32 pid) {
  char dir[64];
  snprintf(dir, sizeof(dir), "/proc/%u/task", pid);
  DIR *d = opendir(dir);
  if (!d) return -errno;
  int err = put(monitor_fd, &pid);
  for (struct dirent *e; (e = readdir(d));) {
    __u32 tid = (__u32)strtoul(e->d_name, NULL, 10);
    if (tid) err = err ?: put(monitor_fd, &tid);
  }
  closedir(d);
  return err;
}

static int add_file(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -errno;
  // the kernel's s_dev: MKDEV as the kernel packs it (major << 20 | minor)
  struct { __u32 dev; __u32 pad; __u64 ino; } k = { .dev = (major(st.st_dev) << 20) | minor(st.st_dev), .ino = st.st_ino };
  return put(files_fd, &k);
}

static void command(char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
  if (n < 3 || line[1] != ' ') { printf("error %s: unknown command\n", line); return; }
  const char *arg = line + 2;
  int err;
  __u32 zero = 0, v;
  switch (line[0]) {
    case 'm': err = add_monitor((__u32)strtoul(arg, NULL, 10)); break;
    case 'p': v = (__u32)strtoul(arg, NULL, 10); err = put(protect_fd, &v); break;
    case 'f': err = add_file(arg); break;
    case 'e': v = arg[0] == '1'; err = bpf_map_update_elem(mode_fd, &zero, &v, BPF_ANY); break;
    default: printf("error %s: unknown command\n", line); return;
  }
  if (err) printf("error %s: %s\n", line, strerror(err < 0 ? -err : err));
  else printf("ok %s\n", line);
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s BPF_OBJECT cgroup:ID[:LEVEL]|uid:UID\n", argv[0]); return 2; }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) { fprintf(stderr, "the daemon is gone\n"); return 1; }
  libbpf_set_print(quiet);
  struct rg_config cfg = { .subject_level = RG_EXACT };
  if (parse_subject(argv[2], &cfg.has_uid, &cfg.subject_uid, &cfg.subject_cgroup, &cfg.subject_level)) { fprintf(stderr, "bad subject %s\n", argv[2]); return 2; }

  struct bpf_object *obj = load_configured(argv[1], &cfg, sizeof(cfg));
  if (!obj) return 1;
  monitor_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "monitor"));
  protect_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "protect"));
  files_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "files"));
  mode_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "mode"));
  int lost_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "lost"));
  // itself first: the guard is a monitor process from before it refuses anything
  if (add_monitor((__u32)getpid())) { fprintf(stderr, "cannot register the guard itself\n"); return 1; }
  struct bpf_program *prog;
  bpf_object__for_each_program(prog, obj) {
    if (!bpf_program__attach(prog)) { fprintf(stderr, "cannot attach %s: %s\n", bpf_program__name(prog), strerror(errno)); return 1; }
  }
  struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), on_rec, NULL, NULL);
  if (!rb) { fprintf(stderr, "cannot open the ring buffer: %s\n", strerror(errno)); return 1; }

  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("REDLINE-GUARD-READY\n");
  struct pollfd pf[2] = { { .fd = 0, .events = POLLIN }, { .fd = ring_buffer__epoll_fd(rb), .events = POLLIN } };
  static struct commands cmds;
  __u64 reported = 0;
  for (;;) {
    int n = poll(pf, 2, 200);
    if (n < 0 && errno != EINTR) break;
    ring_buffer__consume(rb);
    if (pf[0].revents & (POLLIN | POLLHUP)) {
      if (read_commands(&cmds, command) < 0) break; // the daemon closed its end: it is stopping
    }
    __u32 zero = 0;
    __u64 lost = 0;
    if (bpf_map_lookup_elem(lost_fd, &zero, &lost) == 0 && lost > reported) {
      printf("Lost %llu events\n", (unsigned long long)(lost - reported));
      reported = lost;
    }
    if (ferror(stdout)) break;
  }
  ring_buffer__consume(rb);
  ring_buffer__free(rb);
  bpf_object__close(obj);
  return 0;
}
