// Whose processes are the subject's: the one answer every layer asks (the process table, the
// poll sensor, the trials gate, the ports poll). The kernel's filter is the same subject in
// the kernel's terms (subject.ts subjectFilter); what it lets through is asked here again.
import { groupPids } from './cgroup.js';
import { type Subject, subjectContains, subjectPids } from './subject.js';

/** under --trials-under: the sandboxes, each a group of its own */
export interface TrialGroups {
  containsPid(pid: number): boolean;
  list(): { group: string }[];
}

export class Scope {
  constructor(
    readonly subject: Subject,
    private readonly trials: TrialGroups | null = null,
  ) {}

  /** membership now, from /proc (under --trials-under: in one of the trials' groups) */
  isSubject(pid: number): boolean {
    return this.trials ? this.trials.containsPid(pid) : subjectContains(this.subject, pid);
  }

  /** the members now (under --trials-under: of every trial's group) */
  pids(): number[] {
    return this.trials ? this.trials.list().flatMap((t) => groupPids(t.group)) : subjectPids(this.subject);
  }
}
