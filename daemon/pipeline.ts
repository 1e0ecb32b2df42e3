// sensors → process table → rule engine → actions → outputs, and nothing else.
import { EventEmitter } from 'node:events';
import { nowMs } from './clock.js';
import { freeze, thaw } from './actions/freeze.js';
import { kill } from './actions/kill.js';
import type { ActionName, ActionResult } from './actions/result.js';
import { snapshot } from './actions/snapshot.js';
import { observedRecord } from './engine/replay.js';
import type { Ruleset, Match } from './engine/ruleset.js';
import { type Category, type SensorEvent, type Severity, severityRank } from './events.js';
import { ancestorsOf, type Enriched, type ProcInfo, type ProcessTable } from './process-table.js';
import type { SensorTrouble } from './sensors/sensor.js';
import { readStat } from './sensors/proc/read.js';
import type { Subject } from './subject.js';

/** the log the pipeline writes to: append never throws and returns the sealed record */
export interface RecordSink {
  append(fields: { kind: string } & Record<string, unknown>): { seq: number; hash: string };
}

export interface PipelineOptions {
  table: ProcessTable;
  ruleset: Ruleset;
  subject: Subject;
  sink: RecordSink;
  mode: 'observe' | 'enforce';
  trial?: string;
  /** freeze the subject when the monitor can no longer see (sensor dead, events lost) */
  failClosed?: boolean;
  /** log every event as the rules saw it (for `redline rules test`) */
  recordEvents?: boolean;
}

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

// a signal whose target is not yet known may have been sent to a child whose fork event
// is still in another CPU's buffer: look again after this long
const LATE_TARGET_MS = 20;
// after a parent exits, the kernel reparents its children within microseconds
const REPARENT_CHECK_MS = 15;

function procSummary(p: ProcInfo | null): Record<string, unknown> | undefined {
  if (!p) return undefined;
  return {
    pid: p.pid,
    key: p.key,
    ppid: p.ppid,
    uid: p.uid,
    comm: p.comm,
    args: p.args.slice(0, 64),
    subject: p.subject,
    ancestors: ancestorsOf(p).slice(0, 16).map((a) => ({ pid: a.pid, comm: a.comm })),
  };
}

export class Pipeline extends EventEmitter {
  ruleset: Ruleset;
  mode: 'observe' | 'enforce';
  trial: string | undefined;
  frozen = false;
  private freezing: Promise<ActionResult> | null = null;
  private readonly reportedEvalErrors = new Set<string>();
  private readonly monitorSignals: { time: number; sig: number; pid: number }[] = [];
  readonly counts = { events: 0, alerts: 0, bySeverity: { info: 0, low: 0, medium: 0, high: 0, critical: 0 } as Record<Severity, number> };

  constructor(private readonly o: PipelineOptions) {
    super();
    this.ruleset = o.ruleset;
    this.mode = o.mode;
    this.trial = o.trial;
  }

  private write(fields: { kind: string } & Record<string, unknown>): { seq: number; hash: string } {
    return this.o.sink.append(this.trial ? { ...fields, trial: this.trial } : fields);
  }

  /** a record that is not an alert or action (what a sensor saw, a probe's answer), in the trial */
  record(fields: { kind: string } & Record<string, unknown>): void {
    this.write(fields);
  }

  /** one sensor event, all the way through */
  handle(ev: SensorEvent): void {
    this.counts.events++;
    const e = this.o.table.apply(ev);
    if (ev.type === 'signal') {
      if (e.targets.some((t) => t.monitor) || e.target?.monitor) this.noteMonitorSignal(ev.sig, ev.pid);
      if (e.target && !e.target.known && !e.broadcast && e.group === 0 && !ev.target_unresolved) {
        setTimeout(() => this.evaluate(this.o.table.apply(ev)), LATE_TARGET_MS);
        return;
      }
    }
    if (ev.type === 'exit') this.watchOrphans(e.proc);
    this.evaluate(e);
  }

  private watchOrphans(parent: ProcInfo): void {
    const kids = [...parent.children].filter((c) => c.alive);
    if (kids.length === 0) return;
    setTimeout(() => {
      for (const c of kids) {
        const st = readStat(c.pid);
        if (!st || !c.alive || st.starttime !== c.start || st.ppid === parent.pid) continue;
        this.handle({ type: 'reparent', time: Date.now(), pid: c.pid, comm: c.comm, old_ppid: parent.pid, new_ppid: st.ppid });
      }
    }, REPARENT_CHECK_MS).unref();
  }

  private evaluate(e: Enriched): void {
    if (this.o.recordEvents) this.write({ ...observedRecord(e) });
    const errorsBefore = this.ruleset.evalErrors;
    for (const m of this.ruleset.evaluate(e)) this.raise(m, e);
    // a rule that throws sees nothing: that is the monitor going blind, and it must say so
    if (this.ruleset.evalErrors > errorsBefore && !this.reportedEvalErrors.has(this.ruleset.lastEvalError)) {
      this.reportedEvalErrors.add(this.ruleset.lastEvalError);
      this.daemonAlert('redline.rule-eval-error', 'monitor.degraded', 'high', `a rule failed to evaluate: ${this.ruleset.lastEvalError}`, { event: e.event });
    }
  }

  private raise(m: Match, e: Enriched): void {
    const rec = this.write({
      kind: 'alert',
      rule: m.rule.id,
      category: m.rule.category,
      severity: m.rule.severity,
      summary: m.summary,
      pid: e.proc.pid,
      comm: e.proc.comm,
      tags: m.rule.tags,
      actions: m.rule.actions,
      mode: this.mode,
      suppressed: m.suppressed || undefined,
      event: e.event,
      proc: procSummary(e.proc),
      target: procSummary(e.target),
      generation: e.generation,
      live_replicas: e.liveReplicas,
      latency_ms: Math.round((nowMs() - e.event.time) * 1000) / 1000,
    });
    // measured after the synchronous write: event in the kernel → alert on disk
    const onDiskMs = nowMs() - e.event.time;
    this.counted(m.rule.severity, { rule: m.rule.id, category: m.rule.category, severity: m.rule.severity, summary: m.summary, pid: e.proc.pid, seq: rec.seq, on_disk_ms: onDiskMs });
    for (const a of m.rule.actions) void this.act(a, m.rule.id, e.event.time);
  }

  private counted(severity: Severity, info: AlertInfo): void {
    this.counts.alerts++;
    this.counts.bySeverity[severity]++;
    this.emit('alert', info);
  }

  /** an alert the daemon raises about itself (sensor trouble, failed reload) */
  daemonAlert(rule: string, category: Category, severity: Severity, summary: string, extra: Record<string, unknown> = {}): void {
    const rec = this.write({ kind: 'alert', rule, category, severity, summary, pid: process.pid, comm: 'redline', tags: ['daemon'], actions: [], mode: this.mode, ...extra });
    this.counted(severity, { rule, category, severity, summary, pid: process.pid, seq: rec.seq });
  }

  sensorTrouble(t: SensorTrouble): void {
    // losing the process sensor blinds redline; a GPU query hiccup only dims one view
    const severity: Severity = t.reason === 'stderr' ? 'low' : t.sensor === 'gpu' || t.sensor === 'watch' ? 'medium' : 'high';
    const rule = `redline.sensor-${t.reason}`;
    this.daemonAlert(rule, 'monitor.degraded', severity, `${t.sensor} sensor: ${t.detail}`, { sensor: t.sensor, lost: t.lost });
    if (this.o.failClosed && severity === 'high') void this.act('freeze', rule);
  }

  /** only the last few seconds matter: a subject signalling the monitor in a loop must not grow memory */
  private noteMonitorSignal(sig: number, pid: number): void {
    const now = Date.now();
    while (this.monitorSignals.length > 0 && now - (this.monitorSignals[0]?.time ?? now) > 10_000) this.monitorSignals.shift();
    if (this.monitorSignals.length < 1024) this.monitorSignals.push({ time: now, sig, pid });
  }

  /** did a subject process signal the monitor with `sig` around now? (for SIGTERM handling) */
  signalledBySubject(sig: number, withinMs = 2000): boolean {
    const now = Date.now();
    return this.monitorSignals.some((s) => s.sig === sig && now - s.time <= withinMs);
  }

  /** carries out (or, in observe mode, records as skipped) one action; never throws */
  async act(action: 'freeze' | 'kill', cause: string, eventTime?: number): Promise<ActionResult> {
    if (this.mode === 'observe') {
      const r: ActionResult = { action, ok: false, skipped: true, latency_ms: 0 };
      this.write({ kind: 'action', ...r, cause, reason: 'observe mode' });
      return r;
    }
    const fr = await this.freezeOnce(cause, eventTime);
    if (action === 'freeze') return fr;
    return this.runAction('kill', () => kill(this.o.subject), cause);
  }

  private freezeOnce(cause: string, eventTime?: number): Promise<ActionResult> {
    if (this.frozen) return Promise.resolve({ action: 'freeze', ok: true, latency_ms: 0, detail: { already: true } });
    if (!this.freezing) {
      this.freezing = this.runAction('freeze', () => freeze(this.o.subject), cause, eventTime).then((r) => {
        if (r.ok) {
          this.frozen = true;
          const snap = snapshot(this.o.subject);
          this.write({ kind: 'snapshot', cause, processes: snap.processes, latency_ms: snap.latency_ms });
          this.emit('frozen', r);
        }
        this.freezing = null;
        return r;
      });
    }
    return this.freezing;
  }

  async runAction(name: ActionName, run: () => Promise<ActionResult>, cause: string, eventTime?: number): Promise<ActionResult> {
    const r = await run();
    // for a trip: from the kernel event that caused it to the action done
    const since = eventTime === undefined ? undefined : Math.round((nowMs() - eventTime) * 1000) / 1000;
    this.write({ kind: 'action', ...r, cause, since_event_ms: since });
    if (name === 'thaw' && r.ok) this.frozen = false;
    return r;
  }

  /** an operator's kill (a stop signal, later the control socket): carried out in either mode */
  async operatorKill(cause: string): Promise<ActionResult> {
    await this.freezeOnce(cause);
    return this.runAction('kill', () => kill(this.o.subject), cause);
  }

  /** an operator's freeze: carried out in either mode, and logged even when already frozen */
  async operatorFreeze(cause: string): Promise<ActionResult> {
    if (this.frozen) {
      const r: ActionResult = { action: 'freeze', ok: true, latency_ms: 0, detail: { already: true } };
      this.write({ kind: 'action', ...r, cause });
      return r;
    }
    return this.freezeOnce(cause);
  }

  /** the counts at the start of the current trial (a long-running daemon runs many) */
  private trialBase: { alerts: number; bySeverity: Record<Severity, number> } | null = null;

  beginTrial(id: string): void {
    this.trial = id;
    this.trialBase = { alerts: this.counts.alerts, bySeverity: { ...this.counts.bySeverity } };
  }

  /** ends the current trial; its own alert counts (not the daemon's since start) */
  endTrial(): { alerts: number; by_severity: Record<Severity, number>; tripped: boolean } {
    const base = this.trialBase ?? { alerts: 0, bySeverity: { info: 0, low: 0, medium: 0, high: 0, critical: 0 } };
    const by = {} as Record<Severity, number>;
    for (const k of Object.keys(this.counts.bySeverity) as Severity[]) by[k] = this.counts.bySeverity[k] - base.bySeverity[k];
    this.trial = undefined;
    this.trialBase = null;
    return { alerts: this.counts.alerts - base.alerts, by_severity: by, tripped: by.high + by.critical > 0 };
  }

  async operatorThaw(cause: string): Promise<ActionResult> {
    return this.runAction('thaw', () => thaw(this.o.subject), cause);
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
