// Under --trials-under the kernel lets through everything below the parent; a process in
// none of the trials' groups (a service beside the sandboxes, the parent's own) goes no
// further. A trial's process stays one wherever it moves (the table keeps it a subject).
import type { SensorEvent } from '../events.js';

/** pids found outside every trial are remembered, up to this many (then forgotten at once) */
const OUTSIDE_MAX = 65536;

export interface TrialsGateOptions {
  /** the process table already knows the pid as a trial's */
  known: (pid: number) => boolean;
  /** the pid is in one of the trials' groups now (scope.ts) */
  inTrials: (pid: number) => boolean;
}

export class TrialsGate {
  private readonly outside = new Map<number, true>();

  constructor(private readonly o: TrialsGateOptions) {}

  /** the event to judge (a corrected copy, for bytes counted host-wide), or null: no trial's */
  admit(ev: SensorEvent): SensorEvent | null {
    if (ev.type === 'file_bytes') {
      // counted host-wide: only the subject flag is the kernel's guess to correct
      return ev.subject && !this.inTrial(ev.pid) ? { ...ev, subject: false } : ev;
    }
    const admitted = this.inTrial(ev.pid);
    if (ev.type === 'exit') this.outside.delete(ev.pid);
    return admitted ? ev : null;
  }

  private inTrial(pid: number): boolean {
    if (this.o.known(pid)) return true;
    if (this.outside.has(pid)) return false;
    if (this.o.inTrials(pid)) return true;
    if (this.outside.size >= OUTSIDE_MAX) this.outside.clear();
    this.outside.set(pid, true);
    return false;
  }
}
