// The one way events enter the pipeline. Sensors, and analyzers' late finds (a finished hash,
// a disk poll, a probe's answer), push here; the pipeline drains it one event at a time. An
// event pushed while another is being handled waits its turn: nothing re-enters the pipeline
// while it runs, and an event is judged before the events it causes.
import type { SensorEvent } from './events.js';

export interface InboxOptions {
  /** one event through the pipeline */
  handle: (ev: SensorEvent) => void;
  /** what handling an event threw: funnelled, and the next event still handled */
  report: (where: string, err: unknown) => void;
}

/** what an event source is: its events (and nothing else) are taken from it */
export interface EventSource {
  readonly name: string;
  on(name: 'event', fn: (ev: SensorEvent) => void): unknown;
}

export class Inbox {
  private readonly queue: SensorEvent[] = [];
  private draining = false;

  constructor(private readonly o: InboxOptions) {}

  /** queued events not yet handled (0 unless an event is being handled now) */
  get waiting(): number {
    return this.queue.length;
  }

  push(ev: SensorEvent): void {
    this.queue.push(ev);
    if (this.draining) return;
    this.draining = true;
    try {
      // (the queue grows while it is drained: what an event causes comes after it)
      for (let i = 0; i < this.queue.length; i++) {
        const next = this.queue[i] as SensorEvent;
        try {
          this.o.handle(next);
        } catch (err) {
          this.o.report(`${next.type} event`, err);
        }
      }
    } finally {
      this.queue.length = 0;
      this.draining = false;
    }
  }

  /**
   * A source's events come in here. `gate` may hold one back (a process in no trial) or
   * return it corrected; `counted` hears of each one the source delivered (the metrics).
   */
  attach(s: EventSource, gate?: ((ev: SensorEvent) => SensorEvent | null) | null, counted?: (source: string) => void): void {
    s.on('event', (ev: SensorEvent) => {
      let admitted: SensorEvent | null = ev;
      try {
        if (gate) admitted = gate(ev);
      } catch (err) {
        // the gate failed: the event is judged (never dropped unseen), and the failure reported
        this.o.report('trials gate', err);
      }
      if (admitted) this.push(admitted);
      counted?.(s.name);
    });
  }
}
