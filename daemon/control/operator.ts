// The daemon as the control socket sees it: the operator's freeze/thaw/kill, mode switch,
// rule reload, and trial marks for a long-running daemon. (`exec` runs exactly one trial,
// so it refuses to start or end another.)
import type { ActionResult } from '../actions/result.js';
import type { Pipeline } from '../pipeline.js';
import type { RecordSink } from '../pipeline.js';
import type { Controlled } from './commands.js';

export interface OperatorParts {
  pipeline: Pipeline;
  log: RecordSink;
  status: () => Record<string, unknown>;
  reload: () => { ok: boolean; rules?: number; errors?: string[] };
  /** set for `exec`: its one trial */
  fixedTrial?: string;
  /** told of a mode switch (the watchdog freezes on loss only in enforce mode) */
  modeChanged?: (mode: 'observe' | 'enforce') => void;
}

export class Operator implements Controlled {
  constructor(private readonly o: OperatorParts) {}

  status(): Record<string, unknown> {
    return this.o.status();
  }

  freeze(cause: string): Promise<ActionResult> {
    return this.o.pipeline.operatorFreeze(cause);
  }

  thaw(cause: string): Promise<ActionResult> {
    return this.o.pipeline.operatorThaw(cause);
  }

  kill(cause: string): Promise<ActionResult> {
    return this.o.pipeline.operatorKill(cause);
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

  startTrial(name: string): string | null {
    if (this.o.fixedTrial) return `this is redline exec: it runs the one trial ${this.o.fixedTrial}`;
    const current = this.o.pipeline.trial;
    if (current) return `trial ${current} is running: end it first`;
    this.o.pipeline.beginTrial(name);
    this.o.log.append({ kind: 'trial', phase: 'start', trial: name, mode: this.o.pipeline.mode, started_by: 'control' });
    return null;
  }

  endTrial(): { trial: string; alerts: number; tripped: boolean } | string {
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
