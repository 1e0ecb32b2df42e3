/* What redline-guard tells its BPF LSM program at load time, and the records it prints. */
#ifndef REDLINE_GUARD_H
#define REDLINE_GUARD_H
struct rg_config {
  __u32 has_uid;       /* 1: the subject is a uid (subject_uid), else a cgroup (subject_cgroup) */
  __u32 subject_uid;
  __u32 subject_level; /* the group's depth: groups below it are the subject's too (RG_EXACT: not) */
  __u32 pad;
  __u64 subject_cgroup;
};
#define RG_EXACT 0xffffffffu

/* what was attempted */
enum { RG_PTRACE = 1, RG_BPF = 2, RG_MODULE = 3, RG_MOVE = 4, RG_CGROUP_OWN = 5 };

/* one refusal (or, in observe mode, a refusal that would have been) */
struct rg_rec {
  __u64 ns;
  __u32 pid, tid, what, refused;
  __u32 target;     /* ptrace, move: the target pid */
  __u32 monitor;    /* the target is a monitor process */
  __u64 arg;        /* ptrace: the access mode; bpf: the command; move: the group's id */
  __u32 suppressed; /* attempts of the same kind not printed since the last record (rate limit) */
  __u32 pad;
  char comm[16];
  char name[32];    /* move, cgroup_own: the control file written */
};
#endif
