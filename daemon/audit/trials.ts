// Rebuilds trials from verified records. Team decision: every record written during a
// trial carries `trial` (the trial id), and `{kind: "trial", trial, phase: "start"|"end"}`
// marks its bounds; records without `trial` belong to the daemon, not to a trial.

import type { Category } from '../events.js';
import type { VerifiedRecord } from './verify.js';

/** CONTRACT.md's replication stages, in the order a replication goes through them */
export const STAGES = [
  'weights.read',
  'weights.copy',
  'replica.spawn',
  'replica.listen',
  'replica.serving',
  'replica.chain',
] as const satisfies readonly Category[];
export type Stage = (typeof STAGES)[number];

export interface TrialAlert {
  seq: number;
  time: number;
  rule: string;
  category: string;
  severity: string;
  summary: string;
  pid: number | null;
}

export interface Trial {
  id: string;
  /** the furthest stage any alert of the trial reached; null: none */
  stage: Stage | null;
  /** a freeze of this trial succeeded */
  frozen: boolean;
  alerts: number;
  start_time: number | null;
  end_time: number | null;
  /** from the end record, when it says */
  tripped?: boolean;
  exit_code?: number;
  timeline: TrialAlert[];
}

function stageOf(category: unknown): Stage | null {
  return (STAGES as readonly unknown[]).includes(category) ? (category as Stage) : null;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v);
}

export class TrialBuilder {
  // Map keeps the order in which trials first appear in the log.
  readonly #trials = new Map<string, Trial>();

  add(rec: VerifiedRecord): void {
    if (typeof rec.trial !== 'string' || rec.trial === '') return;
    const t = this.#get(rec.trial);
    switch (rec.kind) {
      case 'trial':
        if (rec.phase === 'start') t.start_time = rec.time;
        if (rec.phase === 'end') {
          t.end_time = rec.time;
          if (typeof rec.tripped === 'boolean') t.tripped = rec.tripped;
          if (typeof rec.exit_code === 'number' && Number.isInteger(rec.exit_code)) t.exit_code = rec.exit_code;
        }
        break;
      case 'alert': {
        t.alerts++;
        const stage = stageOf(rec.category);
        if (stage && (t.stage === null || STAGES.indexOf(stage) > STAGES.indexOf(t.stage))) t.stage = stage;
        t.timeline.push({
          seq: rec.seq,
          time: rec.time,
          rule: str(rec.rule),
          category: str(rec.category),
          severity: str(rec.severity),
          summary: str(rec.summary),
          pid: typeof rec.pid === 'number' ? rec.pid : null,
        });
        break;
      }
      case 'action':
        if (rec.action === 'freeze' && rec.ok === true) t.frozen = true;
        break;
      default:
        break;
    }
  }

  trials(): Trial[] {
    return [...this.#trials.values()];
  }

  #get(id: string): Trial {
    let t = this.#trials.get(id);
    if (!t) {
      t = { id, stage: null, frozen: false, alerts: 0, start_time: null, end_time: null, timeline: [] };
      this.#trials.set(id, t);
    }
    return t;
  }
}

export function rebuildTrials(records: Iterable<VerifiedRecord>): Trial[] {
  const b = new TrialBuilder();
  for (const r of records) b.add(r);
  return b.trials();
}
