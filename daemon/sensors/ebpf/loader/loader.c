// redline-loader: loads bytes.bpf.o, attaches it, and prints each record as one tab-separated
// "Y" line on stdout (the format of the bpftrace byte probes, parsed by the same code), after
// REDLINE-READY once attached; the daemon's kill(itself, 0) is echoed as a "P" line. Records
// the ring buffer had no room for are reported as "Lost N events". Stops on SIGINT/SIGTERM, and when its parent dies (PR_SET_PDEATHSIG).
// usage: redline-loader BPF_OBJECT SELF_PID cgroup:ID[:LEVEL] | uid:UID
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/types.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "config.h"
#include "program-common.h"

static const char *OPS[RL_OPS] = {
  "read", "pread", "readv", "preadv", "preadv2", "write", "pwrite", "writev", "pwritev", "pwritev2", "sendto", "sendmsg",
  "sendfile", "sendfile_write", "splice", "splice_write", "copy_file_range", "copy_file_range_write", "mmap", "mmap_write",
  "recvfrom", "recvmsg",
};
static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

static int on_rec(void *ctx, void *data, size_t len) {
  (void)ctx;
  const struct rl_rec *r = data;
  if (len < sizeof(*r)) return 0;
  if (r->op == RL_PING) {
    printf("P\t%llu\t%u\t%u\n", (unsigned long long)r->ns, r->pid, r->tid);
    return 0;
  }
  if (r->op >= RL_OPS && r->op != RL_ENOSPC && r->op != RL_ATTEMPT && r->op != RL_CUT) return 0;
  char comm[17];
  memcpy(comm, r->comm, 16);
  comm[16] = 0;
  for (char *c = comm; *c; c++) if (*c == '\t' || *c == '\n') *c = ' ';
  if (r->op == RL_CUT) {
    printf("C\t%llu\t%u\t%u\t%llu\t%d\t%llu\t%u\t%llu\t%s\n", (unsigned long long)r->ns, r->pid, r->tid, (unsigned long long)r->n, r->fd, (unsigned long long)r->ino, r->dev, (unsigned long long)r->size, comm);
    return 0;
  }
  if (r->op == RL_ATTEMPT) {
    printf("T\t%llu\t%u\t%u\t%llu\t%d\t%lld\t%lld\t%d\t%s\n", (unsigned long long)r->ns, r->pid, r->tid, (unsigned long long)r->n, r->fd, (long long)r->ino, (long long)r->size, (int)r->dev, comm);
    return 0;
  }
  if (r->op == RL_ENOSPC) {
    printf("Z\t%llu\t%u\t%u\t%d\t%llu\t%u\t%u\t%s\n", (unsigned long long)r->ns, r->pid, r->tid, r->fd, (unsigned long long)r->ino, r->dev, r->subj, comm);
    return 0;
  }
  printf("Y\t%llu\t%u\t%u\t%s\t%d\t%llu\t%llu\t%u\t%llu\t%u\t%u\t%s\n", (unsigned long long)r->ns, r->pid, r->tid, OPS[r->op], r->fd,
         (unsigned long long)r->n, (unsigned long long)r->ino, r->dev, (unsigned long long)r->size, r->subj, r->kind & 3, comm);
  // the gate stopped the writer (SIGSTOP) at this write: the daemon resumes it or freezes the subject
  if (r->kind & 4) printf("H\t%llu\t%u\t%u\t%d\t%llu\t%u\n", (unsigned long long)r->ns, r->pid, r->tid, r->fd, (unsigned long long)r->ino, r->dev);
  return 0;
}

static int weights_fd, gating_fd;

// a line on stdin: "w PATH" (a protected weights file, by its inode) or "g 0|1" (the gate off or on)
static void command(char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
  int err = -EINVAL;
  if (n > 2 && line[0] == 'w' && line[1] == ' ') {
    struct stat st;
    if (stat(line + 2, &st) != 0) err = -errno;
    else {
      // (the key of the byte maps, the pid left out; the kernel's s_dev packing)
      struct { __u32 pid, dev; __u64 ino; } k = { 0, (major(st.st_dev) << 20) | minor(st.st_dev), st.st_ino };
      __u8 one = 1;
      err = bpf_map_update_elem(weights_fd, &k, &one, BPF_ANY);
    }
  } else if (n == 3 && line[0] == 'g' && line[1] == ' ') {
    __u32 z = 0, v = line[2] == '1';
    err = bpf_map_update_elem(gating_fd, &z, &v, BPF_ANY);
  }
  if (err) fprintf(stderr, "command %s: %s\n", line, strerror(err < 0 ? -err : err));
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap) {
  return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s BPF_OBJECT SELF_PID cgroup:ID[:LEVEL]|uid:UID\n", argv[0]); return 2; }
  struct rl_config cfg = { .self_pid = (__u32)strtoul(argv[2], NULL, 10) };
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // the daemon is the parent (setpriv execs in place): gone already, nothing is to be watched
  if ((__u32)getppid() != cfg.self_pid) { fprintf(stderr, "the daemon (pid %u) is not the parent\n", cfg.self_pid); return 1; }
  libbpf_set_print(quiet);
  cfg.subject_level = RL_EXACT;
  if (parse_subject(argv[3], &cfg.has_uid, &cfg.subject_uid, &cfg.subject_cgroup, &cfg.subject_level)) { fprintf(stderr, "bad subject %s\n", argv[3]); return 2; }

  struct bpf_object *obj = load_configured(argv[1], &cfg, sizeof(cfg));
  if (!obj) return 1;
  struct bpf_program *prog = bpf_object__find_program_by_name(obj, "on_sys_exit");
  struct bpf_link *link = prog ? bpf_program__attach(prog) : NULL;
  if (!link) { fprintf(stderr, "cannot attach to raw_tracepoint/sys_exit: %s\n", strerror(errno)); return 1; }
  prog = bpf_object__find_program_by_name(obj, "on_sys_enter");
  struct bpf_link *enter = prog ? bpf_program__attach(prog) : NULL;
  if (!enter) { fprintf(stderr, "cannot attach to raw_tracepoint/sys_enter: %s\n", strerror(errno)); return 1; }
  struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), on_rec, NULL, NULL);
  if (!rb) { fprintf(stderr, "cannot open the ring buffer: %s\n", strerror(errno)); return 1; }
  int lost_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "lost"));
  weights_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "weights"));
  gating_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "gating"));

  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("REDLINE-READY\n");
  __u64 reported = 0;
  int err = 0;
  struct pollfd pf[2] = { { .fd = ring_buffer__epoll_fd(rb), .events = POLLIN }, { .fd = 0, .events = POLLIN } };
  static struct commands cmds;
  int nfds = 2;
  while (!stop) {
    int got = poll(pf, nfds, 100);
    if (got < 0 && errno != EINTR) { fprintf(stderr, "poll failed: %s\n", strerror(errno)); err = -errno; break; }
    err = ring_buffer__consume(rb);
    if (err < 0 && err != -EINTR) { fprintf(stderr, "ring buffer poll failed: %s\n", strerror(-err)); break; }
    err = 0;
    // stdin closed (or /dev/null): no more commands; the parent's death still stops this
    if (nfds == 2 && (pf[1].revents & (POLLIN | POLLHUP)) && read_commands(&cmds, command) < 0) nfds = 1;
    __u32 zero = 0;
    __u64 lost = 0;
    if (bpf_map_lookup_elem(lost_fd, &zero, &lost) == 0 && lost > reported) {
      printf("Lost %llu events\n", (unsigned long long)(lost - reported));
      reported = lost;
    }
    if (ferror(stdout)) break; // the reader is gone
  }
  ring_buffer__consume(rb);
  ring_buffer__free(rb);
  bpf_link__destroy(enter);
  bpf_link__destroy(link);
  bpf_object__close(obj);
  return err < 0 && err != -EINTR ? 1 : 0;
}
