// The pipeline's counts: events, alerts by severity and events the sensors lost, since the
// daemon started and (a long-running daemon runs many trials) since the current trial began.
import { type Severity, severityRank } from './events.js';

type BySeverity = Record<Severity, number>;

const none = (): BySeverity => ({ info: 0, low: 0, medium: 0, high: 0, critical: 0 });

export class Tally {
  /** `lost`: events a sensor said it lost (kernel buffers, a queue): the trial did not see all */
  readonly counts = { events: 0, alerts: 0, lost: 0, bySeverity: none() };
  /** the counts at the start of the current trial */
  private base: { alerts: number; lost: number; bySeverity: BySeverity } | null = null;

  alert(severity: Severity): void {
    this.counts.alerts++;
    this.counts.bySeverity[severity]++;
  }

  begin(): void {
    this.base = { alerts: this.counts.alerts, lost: this.counts.lost, bySeverity: { ...this.counts.bySeverity } };
  }

  /** the current trial's own alert counts (not the daemon's since start) and the events lost during it */
  end(): { alerts: number; by_severity: BySeverity; tripped: boolean; lost_events: number } {
    const base = this.base ?? { alerts: 0, lost: 0, bySeverity: none() };
    const by = none();
    for (const k of Object.keys(this.counts.bySeverity) as Severity[]) by[k] = this.counts.bySeverity[k] - base.bySeverity[k];
    this.base = null;
    return { alerts: this.counts.alerts - base.alerts, by_severity: by, tripped: by.high + by.critical > 0, lost_events: this.counts.lost - base.lost };
  }

  worst(): Severity | null {
    const order: Severity[] = ['critical', 'high', 'medium', 'low', 'info'];
    return order.find((s) => this.counts.bySeverity[s] > 0) ?? null;
  }

  tripped(): boolean {
    const w = this.worst();
    return w !== null && severityRank(w) >= severityRank('high');
  }
}
