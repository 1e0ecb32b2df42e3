// Analyzers learn from events the sensors saw (the weights tracker, scans, disk, orphans, the
// probe scheduler). Each takes an enriched event and returns the events it derives from it;
// what it finds later (a finished hash, a timer, a probe's answer) it emits as 'event', which
// the inbox takes like any sensor's. Nothing an analyzer does re-enters the pipeline.
import type { SensorEvent } from '../events.js';
import type { SensorHealth } from '../sensors/sensor.js';

export interface Analyzer {
  readonly name: string;
  health(): SensorHealth;
}

/** nothing derived: shared, so a call that finds nothing allocates nothing */
export const NONE: readonly SensorEvent[] = Object.freeze([]);

/**
 * What an analyzer derives, sorted by when: during a call (collect()) its events are
 * collected and returned by that call; outside one (a timer, a promise) they go to `late`.
 */
export class Derivations {
  private during = false;
  private out: SensorEvent[] | null = null;

  constructor(private readonly late: (ev: SensorEvent) => void) {}

  /** runs one call; what it derives is returned (when it throws, what it had derived still goes out, late) */
  collect(call: () => void): readonly SensorEvent[] {
    this.during = true;
    this.out = null;
    try {
      call();
    } catch (err) {
      this.during = false;
      for (const ev of this.out ?? NONE) this.late(ev);
      this.out = null;
      throw err;
    }
    const out = this.out ?? NONE;
    this.during = false;
    this.out = null;
    return out;
  }

  add(ev: SensorEvent): void {
    if (!this.during) this.late(ev);
    else if (this.out === null) this.out = [ev];
    else this.out.push(ev);
  }
}
