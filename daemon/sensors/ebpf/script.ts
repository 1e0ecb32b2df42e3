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

export function generateScript(filter: SubjectFilter): string {
  const p = predicate(filter);
  return [
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
    `  printf("S\\t%llu\\t%d\\t%d\\tkill\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->pid, args->sig, comm);`,
    `}`,
    `tracepoint:syscalls:sys_enter_tkill /${p}/ {`,
    `  printf("S\\t%llu\\t%d\\t%d\\ttkill\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->pid, args->sig, comm);`,
    `}`,
    // tgkill names a thread; the process is its tgid argument
    `tracepoint:syscalls:sys_enter_tgkill /${p}/ {`,
    `  printf("S\\t%llu\\t%d\\t%d\\ttgkill\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->tgid, args->sig, comm);`,
    `}`,
    // the target is an fd; userspace resolves it through /proc/PID/fdinfo
    `tracepoint:syscalls:sys_enter_pidfd_send_signal /${p}/ {`,
    `  printf("S\\t%llu\\t%d\\t%d\\tpidfd_send_signal\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, args->pidfd, args->sig, comm);`,
    `}`,
    `tracepoint:syscalls:sys_exit_setsid /${p} && args->ret > 0/ {`,
    `  printf("D\\t%llu\\t%d\\t%d\\t%s\\n", nsecs, pid, tid, comm);`,
    `}`,
    '',
  ].join('\n');
}
