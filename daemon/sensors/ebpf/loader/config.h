/* What the loader tells its eBPF program at load time (the program's read-only data). */
#ifndef REDLINE_LOADER_CONFIG_H
#define REDLINE_LOADER_CONFIG_H
struct rl_config {
  __u32 self_pid;   /* the daemon: its own reads of the weights (fingerprints) are not loads */
  __u32 has_uid;    /* 1: the subject is a uid (subject_uid), else a cgroup (subject_cgroup) */
  __u32 subject_uid;
  __u32 subject_level; /* the group's depth below the root: the groups below it are in scope too (RL_EXACT: not) */
  __u64 subject_cgroup;
};

/* subject_level when none was given: the subject's group alone */
#define RL_EXACT 0xffffffffu

/* one record of bytes moved; printed as a "Y" line by the loader */
struct rl_rec {
  __u64 ns, n, ino, size;
  __u32 pid, tid, op, dev, subj, kind;
  __s32 fd;
  char comm[16];
};

/* the record's op, in the order of the loader's names */
enum {
  RL_READ, RL_PREAD, RL_READV, RL_PREADV, RL_PREADV2, RL_WRITE, RL_PWRITE, RL_WRITEV, RL_PWRITEV, RL_PWRITEV2,
  RL_SENDTO, RL_SENDMSG, RL_SENDFILE, RL_SENDFILE_W, RL_SPLICE, RL_SPLICE_W, RL_CFR, RL_CFR_W, RL_MMAP, RL_MMAP_W, RL_RECVFROM, RL_RECVMSG, RL_OPS
};
/* not bytes: the echo of the daemon's kill(itself, 0), printed as a "P" line */
#define RL_PING 0xffff
/* not bytes: a write refused for want of space (ENOSPC), printed as a "Z" line */
#define RL_ENOSPC 0xfffe
/* not bytes: a subject's ptrace, bpf(), module load, or a call the kernel refused it (EPERM), printed as a "T" line */
#define RL_ATTEMPT 0xfffd
/* not bytes: the copy gate killed a reader of the weights as it began moving them in one call ("C" line) */
#define RL_CUT 0xfffc
#endif
