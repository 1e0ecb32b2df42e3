// rules → actions → log: an enriched event judged by the loaded rules, each match an alert
// record (written before anyone is told), its actions started (in observe mode recorded as
// skipped), and the daemon's own alerts about itself. A rule that fails to evaluate is the
// monitor going blind, and says so.
import { nowMs } from './clock.js';
import { alertRecord } from './alert-record.js';
import type { ActionRunner } from './actions/runner.js';
import type { RuleAction } from './engine/schema.js';
import { observedRecord } from './engine/replay.js';
import type { Match, Ruleset } from './engine/ruleset.js';
import type { Category, Severity } from './events.js';
import type { ErrorFunnel } from './funnel.js';
import type { Enriched } from './process.js';
import type { Tally } from './tally.js';
import type { Trial, TrialSet } from './trials/trial-set.js';

export interface AlertInfo {
  rule: string;
  category: Category;
  severity: Severity;
  summary: string;
  pid: number;
  seq: number;
  /** kernel event → alert written, for rule alerts */
  on_disk_ms?: number;
}

export interface JudgeOptions {
  ruleset: () => Ruleset;
  mode: () => 'observe' | 'enforce';
  /** a record into the log; `trial`: its trial under --trials-under (null: none of them) */
  write: (fields: { kind: string } & Record<string, unknown>, trial?: Trial | null) => { seq: number; hash: string };
  actions: ActionRunner;
  trials: TrialSet | undefined;
  failClosed: boolean;
  /** log every event as the rules saw it (for `redline rules test`) */
  recordEvents: boolean;
  funnel: Pick<ErrorFunnel, 'report' | 'firstTime'>;
  tally: Tally;
  /** an alert is on disk: the listeners are told */
  alerted: (info: AlertInfo) => void;
}

export class Judge {
  constructor(private readonly o: JudgeOptions) {}

  evaluate(e: Enriched): void {
    if (this.o.recordEvents) this.o.write({ ...observedRecord(e) });
    const rules = this.o.ruleset();
    const errorsBefore = rules.evalErrors;
    for (const m of rules.evaluate(e)) this.raise(m, e);
    // a rule that throws sees nothing: that is the monitor going blind, and it must say so
    if (rules.evalErrors > errorsBefore && this.o.funnel.firstTime(`rule: ${rules.lastEvalError}`)) {
      this.blinded('redline.rule-eval-error', `a rule failed to evaluate: ${rules.lastEvalError}`, { event: e.event });
    }
  }

  /**
   * The monitor cannot see all it should (an internal error, a rule that fails): a high
   * monitor.degraded alert, and the subject frozen in enforce mode or with --fail-closed.
   */
  blinded(rule: string, summary: string, extra: Record<string, unknown>): void {
    this.daemonAlert(rule, 'monitor.degraded', 'high', summary, extra);
    if (this.o.mode() === 'enforce' || this.o.failClosed) this.guarded(this.o.trials ? this.o.trials.freezeAll(rule) : this.o.actions.freezeOnce(rule), 'freeze');
  }

  /** an action under way: a failure of its own is funnelled, not left unhandled */
  private guarded(p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => this.o.funnel.report(`${what} action`, err));
  }

  private raise(m: Match, e: Enriched): void {
    // under --trials-under the alert, its actions and its count are the process's trial's
    const trial = this.o.trials?.of(e.proc);
    const rec = this.o.write(alertRecord(m, e, this.o.mode()), trial);
    // measured after the synchronous write: event in the kernel → alert on disk
    const onDiskMs = nowMs() - e.event.time;
    // actions start before anyone is told: observers never delay a freeze
    const runner = trial?.actions ?? this.o.actions;
    for (const a of m.rule.actions) {
      // observe mode only records the action as skipped: no promise on the hot path for it
      if (this.o.mode() === 'observe') runner.skip(a, m.rule.id);
      else if (trial === null) this.guarded(this.outsideTrials(a, m.rule.id), a);
      else this.guarded(runner.act(a, m.rule.id, e.event.time), a);
    }
    if (trial) this.o.trials?.counted(trial, m.rule.severity);
    this.counted(m.rule.severity, { rule: m.rule.id, category: m.rule.category, severity: m.rule.severity, summary: m.summary, pid: e.proc.pid, seq: rec.seq, on_disk_ms: onDiskMs });
  }

  /**
   * An action asked for by an alert that is no trial's (the daemon's own: a sensor that died)
   * under --trials-under: a freeze freezes every trial (the monitor cannot tell whose it is);
   * a kill kills none.
   */
  private async outsideTrials(a: RuleAction, cause: string): Promise<unknown> {
    if (a === 'freeze' || (a === 'fail-closed' && this.o.failClosed)) return this.o.trials?.freezeAll(cause);
    return undefined;
  }

  private counted(severity: Severity, info: AlertInfo): void {
    this.o.tally.alert(severity);
    this.o.alerted(info);
  }

  /** an alert the daemon raises about itself (sensor trouble, failed reload) */
  daemonAlert(rule: string, category: Category, severity: Severity, summary: string, extra: Record<string, unknown> = {}): void {
    const rec = this.o.write({ kind: 'alert', rule, category, severity, summary, pid: process.pid, comm: 'redline', tags: ['daemon'], actions: [], mode: this.o.mode(), ...extra });
    this.counted(severity, { rule, category, severity, summary, pid: process.pid, seq: rec.seq });
  }

}
