// The daemon as the control socket sees it: the operator's freeze/thaw/kill, mode switch,
// rule reload, and trial marks for a long-running daemon. (`exec` runs exactly one trial,
// so it refuses to start or end another.)
import { type ActionResult, combined } from '../actions/result.js';
import type { Pipeline } from '../pipeline.js';
import type { RecordSink } from '../record-sink.js';
import type { Controlled } from './commands.js';
import type { Trial, TrialSet } from '../trials/trial-set.js';

export interface OperatorParts {
  pipeline: Pipeline;
  log: RecordSink;
  status: () => Record<string, unknown>;
  reload: () => { ok: boolean; rules?: number; errors?: string[] };
  /** set for `exec`: its one trial */
  fixedTrial?: string;
  /** run --trials-under: the sandboxes' trials */
  trials?: TrialSet | null;
  /** told of a mode switch (the watchdog freezes on loss only in enforce mode) */
  modeChanged?: (mode: 'observe' | 'enforce') => void;
}

export class Operator implements Controlled {
  constructor(private readonly o: OperatorParts) {}

  status(): Record<string, unknown> {
    return this.o.status();
  }

  freeze(cause: string): Promise<ActionResult> {
    if (this.o.trials) return this.eachTrial('freeze', (t) => t.actions.operatorFreeze(cause));
    return this.o.pipeline.operatorFreeze(cause);
  }

  thaw(cause: string): Promise<ActionResult> {
    if (this.o.trials) return this.eachTrial('thaw', (t) => t.actions.operatorThaw(cause));
    return this.o.pipeline.operatorThaw(cause);
  }

  kill(cause: string): Promise<ActionResult> {
    if (this.o.trials) return this.eachTrial('kill', (t) => t.actions.operatorKill(cause));
    return this.o.pipeline.operatorKill(cause);
  }

  /** under --trials-under the operator's freeze, thaw and kill take every sandbox (each its own record) */
  private async eachTrial(action: ActionResult['action'], run: (t: Trial) => Promise<ActionResult>): Promise<ActionResult> {
    const rs = await Promise.all((this.o.trials?.list() ?? []).map(run));
    return combined(action, rs, { trials: rs.length });
  }

  reload(): { ok: boolean; rules?: number; errors?: string[] } {
    return this.o.reload();
  }

  setMode(mode: 'observe' | 'enforce'): 'observe' | 'enforce' {
    const previous = this.o.pipeline.mode;
    this.o.pipeline.mode = mode;
    this.o.modeChanged?.(mode);
    return previous;
  }

  trialMeta(group: string, meta: Record<string, string>): { trial: string | null } | string {
    const trials = this.o.trials;
    if (!trials) return 'trial meta is for a daemon run with --trials-under';
    let trial: string | null = null;
    for (const [k, v] of Object.entries(meta)) trial = trials.meta(group, k, v).trial;
    return { trial };
  }

  startTrial(name: string, meta?: Record<string, string>): string | null {
    if (this.o.trials) return 'under --trials-under a trial starts when its group appears';
    if (this.o.fixedTrial) return `this is redline exec: it runs the one trial ${this.o.fixedTrial}`;
    const current = this.o.pipeline.trial;
    if (current) return `trial ${current} is running: end it first`;
    this.o.pipeline.beginTrial(name);
    this.o.log.append({ kind: 'trial', phase: 'start', trial: name, mode: this.o.pipeline.mode, started_by: 'control', meta });
    return null;
  }

  endTrial(): { trial: string; alerts: number; tripped: boolean } | string {
    if (this.o.trials) return 'under --trials-under a trial ends when its group empties or goes';
    if (this.o.fixedTrial) return `this is redline exec: its trial ${this.o.fixedTrial} ends when the subject does`;
    const trial = this.o.pipeline.trial;
    if (!trial) return 'no trial is running';
    const frozen = this.o.pipeline.frozen;
    const counts = this.o.pipeline.endTrial();
    this.o.log.append({ kind: 'trial', phase: 'end', trial, ...counts, frozen, ended_by: 'control' });
    return { trial, alerts: counts.alerts, tripped: counts.tripped };
  }

  logAction(fields: Record<string, unknown>): void {
    this.o.pipeline.record(fields as { kind: string } & Record<string, unknown>);
  }
}
