// Events about the monitor itself and what it guards: a sensor that cannot see everything,
// a survivor of a freeze, a process gone, an attempt on the monitor or on another's process.
import type { EventBase } from './base.js';

/**
 * A sensor that can no longer see everything (it died, lost events, hangs), as an event of
 * the daemon's own (pid: the daemon). rules/monitor.yaml decides its severity and whether the
 * subject is frozen for it.
 */
export interface SensorTroubleEvent extends EventBase {
  type: 'sensor_trouble';
  sensor: string;
  reason: 'lost-events' | 'died' | 'restart-failed' | 'stderr' | 'timeout' | 'garbage' | 'failed';
  detail: string;
  lost?: number;
  /** the daemon runs with --fail-closed */
  fail_closed: boolean;
}

/**
 * The command `exec` started has exited and this process of its group still runs (a server
 * it left behind): one event per survivor, the daemon's own finding, not a sensor's.
 */
export interface SurvivorEvent extends EventBase {
  type: 'survivor';
  /** the command's own pid, now gone */
  agent_pid: number;
  /** how many processes outlived it */
  survivors: number;
}

/**
 * The poll sensor cannot see signals: a protected or allowed process that is gone while the
 * subject's processes ran is reported, with those processes, for the rules to judge.
 */
export interface VanishedEvent extends EventBase {
  type: 'vanished';
  /** the subject's processes alive at the pass that found it gone */
  subject_pids: number[];
}


/** the syscalls (and cgroup writes) an `attempt` names */
export const ATTEMPT_CALLS = ['ptrace', 'bpf', 'init_module', 'finit_module', 'delete_module', 'pidfd_open', 'process_vm_writev', 'cgroup_move', 'cgroup_kill', 'sendfile', 'splice', 'copy_file_range'] as const;
export type AttemptCall = (typeof ATTEMPT_CALLS)[number];

/** an attempt on the monitor or on a process outside the subject, and what the guard made of it */
export interface AttemptEvent extends EventBase {
  type: 'attempt';
  syscall: AttemptCall;
  /** the process it aimed at (ptrace, pidfd_open, process_vm_writev, the pid a cgroup move names) */
  target_pid?: number;
  /** ptrace's request, bpf's command; a cgroup move's group id */
  request?: number;
  /** the kernel's answer (0, or -errno); absent when the guard reported it before the call returned */
  ret?: number;
  /** refused, and by what: the BPF LSM guard, the subject's seccomp filter, or (none) not refused */
  refused_by?: 'lsm' | 'seccomp';
  /** observe mode: the guard let it happen and would have refused it in enforce mode */
  would_refuse?: boolean;
  /** attempts of the same kind the kernel did not report, within its rate limit, since the last one */
  suppressed?: number;
  /** a cgroup write: the control file */
  file?: string;
  /** the copy gate killed it at the call's entry (sendfile, splice, copy_file_range from the weights): the weights' inode and size */
  cut?: boolean;
  dev?: number;
  ino?: number;
  size?: number;
}
