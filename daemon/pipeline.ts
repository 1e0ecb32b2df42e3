// sensors → ingress → process table → rule engine → actions → outputs, and nothing else.
// Every sensor event enters through ingest(); the routing below is the one place that says
// which stage sees which event type. Nothing on this path may end the daemon: an error
// becomes a monitor.degraded alert and, where the subject can no longer be watched, a freeze.
import { EventEmitter } from 'node:events';
import { nowMs } from './clock.js';
import type { ActionName, ActionResult } from './actions/result.js';
import { ActionRunner } from './actions/runner.js';
import type { Snapshot } from './actions/snapshot.js';
import type { RuleAction } from './engine/schema.js';
import { observedRecord } from './engine/replay.js';
import type { Ruleset, Match } from './engine/ruleset.js';
import { type Category, type ListenEvent, type SensorEvent, type Severity, severityRank } from './events.js';
import { emitEach } from './emit-each.js';
import { ErrorFunnel } from './funnel.js';
import { Ingress } from './ingress.js';
import { ancestorsOf, type Enriched, type ProcInfo } from './process.js';
import type { ProcessTable } from './process-table.js';
import type { PortPoller } from './sensors/ports/poll.js';
import type { ProbeScheduler } from './sensors/ports/probes.js';
import type { OrphanCheck } from './sensors/proc/orphans.js';
import type { DiskWatch } from './sensors/system/disk.js';
import type { ScanTracker } from './sensors/system/scans.js';
import type { SensorTrouble } from './sensors/sensor.js';
import type { WeightsTracker } from './sensors/weights/tracker.js';
import { readStat } from './sensors/proc/read.js';
import { type Subject, subjectPids } from './subject.js';
import type { Trial, TrialSet } from './trials/trial-set.js';
import type { RecordSink } from './record-sink.js';

export type { RecordSink } from './record-sink.js';

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
  /** the stages that learn from events besides the rules (absent ones are skipped) */
  stages?: Stages;
  /** the evidence taken at a freeze (tests pass one that fails) */
  snapshot?: (s: Subject) => Snapshot;
  /** run --trials-under: each process's trial, whose records, verdict and freeze are its own */
  trials?: TrialSet;
}

/** sensors that are fed by other sensors' events, and the first stage every event passes */
export interface Stages {
  /** names opened and linked files, tags the monitor's own */
  ingress?: Ingress;
  /** follows the weights through opens, links and closes */
  weights?: Pick<WeightsTracker, 'observe' | 'observeBytes' | 'concerns' | 'connected' | 'listened' | 'exited'>;
  /** the ports sensor: eBPF's listeners are claimed so it need only see them close */
  ports?: Pick<PortPoller, 'claim' | 'listenersOf'>;
  /** probes a replica's ports */
  probes?: Pick<ProbeScheduler, 'listens'>;
  /** finds the children an exited process left behind */
  orphans?: Pick<OrphanCheck, 'exited'>;
  /** a filesystem the subject fills */
  disk?: Pick<DiskWatch, 'wrote' | 'refused'>;
  /** the subject's sweeps of /proc, ports and folders */
  scans?: Pick<ScanTracker, 'procRead' | 'connected' | 'listed' | 'exited'>;
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

function procSummary(p: ProcInfo | null): Record<string, unknown> | undefined {
  if (!p) return undefined;
  return {
    pid: p.pid,
    // the pid inside its own pid namespace (a container's), when it differs and is known
    ns_pid: p.nsPid,
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
  readonly actions: ActionRunner;
  private readonly stages: Stages;
  private readonly ingress: Ingress;
  private readonly funnel: ErrorFunnel;
  private readonly monitorSignals: { time: number; sig: number; pid: number }[] = [];
  /** `lost`: events a sensor said it lost (kernel buffers, a queue): the trial did not see all */
  readonly counts = { events: 0, alerts: 0, lost: 0, bySeverity: { info: 0, low: 0, medium: 0, high: 0, critical: 0 } as Record<Severity, number> };

  constructor(private readonly o: PipelineOptions) {
    super();
    this.ruleset = o.ruleset;
    this.mode = o.mode;
    this.trial = o.trial;
    this.stages = o.stages ?? {};
    this.ingress = this.stages.ingress ?? new Ingress();
    this.actions = new ActionRunner({
      subject: o.subject,
      mode: () => this.mode,
      failClosed: o.failClosed === true,
      write: (fields) => this.write(fields),
      ...(o.snapshot ? { snapshot: o.snapshot } : {}),
      frozen: (r) => this.emit('frozen', r),
      report: (where, err) => this.funnel.report(where, err),
      strays: () => this.strayPids(),
    });
    this.funnel = new ErrorFunnel((key, err, where) => this.blinded('redline.internal-error', `internal error: ${key}`, { where, error: err.stack?.split('\n').slice(0, 6).join('\n') }));
  }

  /** live processes that are the subject's business outside its group (see RunnerOptions.strays) */
  strayPids(): number[] {
    const out: number[] = [];
    let inScope: Set<number> | null = null;
    for (const p of this.o.table.processes()) {
      if (!p.alive || p.monitor || p.allowed || !(p.subject || p.replica)) continue;
      // one read of the group's member list, only when there is someone to test
      inScope ??= new Set(subjectPids(this.o.subject));
      if (inScope.has(p.pid)) continue;
      // the exits of processes outside the group are not traced: the pid must still be that process
      if (readStat(p.pid)?.starttime === p.start) out.push(p.pid);
      else p.alive = false;
    }
    return out;
  }

  get frozen(): boolean {
    return this.actions.frozen;
  }

  /**
   * Listeners (outputs, the CLI's printers) each on their own: one that throws neither
   * reaches the caller's path nor keeps the event from the others; it is an internal error.
   */
  override emit(name: string | symbol, ...args: unknown[]): boolean {
    return emitEach(this, name, args, (err) => this.funnel.report(`${String(name)} listener`, err));
  }

  /** `trial`: the record's trial under --trials-under (null: none of them) */
  private write(fields: { kind: string } & Record<string, unknown>, trial?: Trial | null): { seq: number; hash: string } {
    const id = trial === undefined ? this.trial : trial?.id;
    return this.o.sink.append(id ? { ...fields, trial: id } : fields);
  }

  /**
   * An error outside the pipeline's own path (the trials' scan and ends): the same as one on
   * it — a high monitor.degraded alert, frozen in enforce mode or with --fail-closed.
   */
  reportError(where: string, err: unknown): void {
    this.funnel.report(where, err);
  }

  /** a record that is not an alert or action (what a sensor saw, a probe's answer), in the trial */
  record(fields: { kind: string } & Record<string, unknown>): void {
    this.write(fields, this.trialOfPid(fields.pid));
  }

  /** under --trials-under: the trial of a process the table knows (undefined: not in that mode) */
  private trialOfPid(pid: unknown): Trial | null | undefined {
    if (!this.o.trials) return undefined;
    const p = typeof pid === 'number' ? this.o.table.get(pid) : undefined;
    return p ? this.o.trials.of(p) : null;
  }

  /** every sensor's events enter here; whatever goes wrong on the way is funnelled, never thrown */
  ingest(raw: SensorEvent): void {
    try {
      this.route(raw);
    } catch (err) {
      this.funnel.report(`${raw.type} event`, err);
    }
  }

  /** which stages see which event, in the order that loses nothing */
  private route(ev: SensorEvent): void {
    const st = this.stages;
    switch (ev.type) {
      case 'file_bytes': {
        // the kernel flags the subject's scope (its cgroup or uid); the libbpf loader cannot see
        // the lineage, so a process that left the scope is known as the subject's by the table
        if (!ev.subject && this.o.table.get(ev.pid)?.subject) ev.subject = true;
        // host-wide: most of it is other processes' business and goes no further
        if (!ev.subject && !st.weights?.concerns(ev)) return;
        const e = this.apply(ev);
        this.stage('weights', () => st.weights?.observeBytes(ev, e.proc.key));
        if (ev.subject) {
          if (ev.write) this.stage('disk', () => st.disk?.wrote(ev));
          this.evaluate(e);
        }
        return;
      }
      case 'enospc':
        if (ev.subject || this.o.table.get(ev.pid)?.subject) this.stage('disk', () => st.disk?.refused(ev));
        return;
      case 'proc_read':
        // a name relative to a folder of /proc is not counted (ps and its kin give whole names)
        this.stage('scans', () => st.scans?.procRead(ev.pid, ev.comm, ev.filename, ev.time));
        return;
      case 'listing':
        this.stage('scans', () => st.scans?.listed(ev));
        return;
      case 'file_change':
        return this.evaluate(this.apply(this.ingress.changed(ev)));
      case 'open':
      case 'link': {
        // the ingress names the file first (it changes only these two types)
        const { event, file } = ev.type === 'open' ? this.ingress.opened(ev) : { event: this.ingress.linked(ev), file: null };
        const e = this.apply(event);
        // the weights sensor next: a weights_open it reports is judged before the open
        // (guarded inline, not through stage(): every process opens files, a closure each adds up)
        try {
          st.weights?.observe(event, file, e.proc.key);
          // (every open of a /proc file, when a rule asks for all reads: the kernel sends no Q line then)
          if (event.type === 'open' && event.path?.startsWith('/proc/') && e.proc.subject) st.scans?.procRead(event.pid, event.comm, event.path, event.time);
        } catch (err) {
          this.funnel.report('weights or scan stage', err);
        }
        return this.evaluate(e);
      }
      case 'listen': {
        // a reader of the weights that listens is a replica at once (its load comes first, so
        // this listen is a replica's), before the ports sensor knows the listener
        const key = this.o.table.get(ev.pid)?.key;
        if (key) this.stage('weights', () => st.weights?.listened(key));
        // eBPF saw it: the ports sensor need only see it close
        if (ev.seen_by !== 'poll') this.stage('ports', () => st.ports?.claim(ev));
        this.record({ kind: 'event', type: 'port.listen', pid: ev.pid, comm: ev.comm ?? this.o.table.get(ev.pid)?.comm, proto: ev.proto, addr: ev.addr, port: ev.port, inode: ev.inode, seen_by: ev.seen_by });
        return this.judgeListen(ev);
      }
      case 'connect': {
        const e = this.apply(ev);
        this.stage('weights', () => st.weights?.connected(ev, e.proc.key));
        this.stage('scans', () => st.scans?.connected(ev));
        return this.evaluate(e);
      }
      case 'listen_close':
        this.record({ kind: 'event', type: 'port.close', pid: ev.pid, comm: ev.comm, proto: ev.proto, addr: ev.addr, port: ev.port, inode: ev.inode });
        return this.handle(ev);
      case 'probe':
        this.record({ kind: 'event', type: 'probe', pid: ev.pid, port: ev.port, netns: ev.netns, path: ev.path, status: ev.answered ? ev.status : null, excerpt: ev.excerpt, inference: ev.inference, error: ev.error, latency_ms: ev.latency_ms, model: ev.model, functional: ev.functional, canary: ev.canary, original_canary: ev.original_canary, original_port: ev.original_port, canary_ms: ev.canary_ms, canary_error: ev.canary_error });
        return this.handle(ev);
      case 'weights_load':
        this.handle(ev);
        // found to be a replica after it began listening: its listeners count from now (the
        // allowed server loading its own weights is no replica, and its ports are not the subject's)
        if (this.o.table.get(ev.pid)?.replica) for (const l of this.stage('ports', () => st.ports?.listenersOf(ev.pid, ev.comm)) ?? []) this.judgeListen(l);
        return;
      case 'exit': {
        const e = this.apply(ev);
        try {
          st.orphans?.exited(e.proc);
          st.weights?.exited(e.proc.key, ev.time);
          st.scans?.exited(ev.pid);
        } catch (err) {
          this.funnel.report('exit stages', err);
        }
        return this.evaluate(e);
      }
      default:
        return this.handle(ev);
    }
  }

  /**
   * A listener through the rules, then probed: the subject's, and a replica's wherever it runs.
   * One that answers like the model is a replica serving, whatever route its weights took.
   */
  private judgeListen(ev: ListenEvent): void {
    this.handle(ev);
    const p = this.o.table.get(ev.pid);
    if (p && (p.subject || p.replica || ancestorsOf(p).some((a) => a.replica))) this.stage('probe', () => this.stages.probes?.listens(ev));
  }

  /** one stage on its own: a sensor that throws is reported, and the rules still judge the event */
  private stage<T>(name: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.funnel.report(`${name} sensor`, err);
      return undefined;
    }
  }

  /** one event through the table and the rules (already past the ingress) */
  handle(ev: SensorEvent): void {
    const e = this.apply(ev);
    if (ev.type === 'signal') {
      if (this.o.trials) this.acrossTrials(e);
      if (e.targets.some((t) => t.monitor) || e.target?.monitor) this.noteMonitorSignal(ev.sig, ev.pid);
      if (e.target && !e.target.known && !e.broadcast && e.group === 0 && !ev.target_unresolved) {
        setTimeout(() => this.ingestLate(ev), LATE_TARGET_MS);
        return;
      }
    }
    this.evaluate(e);
  }

  /**
   * Under --trials-under every sandbox's process is "a subject"; a signal from one sandbox
   * to another still reaches outside the sender's own tree: the rules see such a target as
   * no subject (a copy: the table's entry is left as it is).
   */
  private acrossTrials(e: Enriched): void {
    const trials = this.o.trials;
    if (!trials || e.targets.length === 0) return;
    const mine = trials.of(e.proc);
    const outside = (t: ProcInfo): ProcInfo => (t.subject && trials.of(t) !== mine ? { ...t, subject: false } : t);
    e.targets = e.targets.map(outside);
    if (e.target) e.target = e.targets.find((x) => x.pid === e.target?.pid) ?? outside(e.target);
  }

  private ingestLate(ev: SensorEvent): void {
    try {
      const e = this.o.table.apply(ev);
      if (ev.type === 'signal' && this.o.trials) this.acrossTrials(e);
      this.evaluate(e);
    } catch (err) {
      this.funnel.report(`${ev.type} event`, err);
    }
  }

  private apply(ev: SensorEvent): Enriched {
    this.counts.events++;
    return this.o.table.apply(ev);
  }

  private evaluate(e: Enriched): void {
    if (this.o.recordEvents) this.write({ ...observedRecord(e) });
    const errorsBefore = this.ruleset.evalErrors;
    for (const m of this.ruleset.evaluate(e)) this.raise(m, e);
    // a rule that throws sees nothing: that is the monitor going blind, and it must say so
    if (this.ruleset.evalErrors > errorsBefore && this.funnel.firstTime(`rule: ${this.ruleset.lastEvalError}`)) {
      this.blinded('redline.rule-eval-error', `a rule failed to evaluate: ${this.ruleset.lastEvalError}`, { event: e.event });
    }
  }

  /**
   * The monitor cannot see all it should (an internal error, a rule that fails): a high
   * monitor.degraded alert, and the subject frozen in enforce mode or with --fail-closed.
   */
  private blinded(rule: string, summary: string, extra: Record<string, unknown>): void {
    this.daemonAlert(rule, 'monitor.degraded', 'high', summary, extra);
    if (this.mode === 'enforce' || this.o.failClosed) this.guarded(this.o.trials ? this.o.trials.freezeAll(rule) : this.actions.freezeOnce(rule), 'freeze');
  }

  /** an action under way: a failure of its own is funnelled, not left unhandled */
  private guarded(p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => this.funnel.report(`${what} action`, err));
  }

  private raise(m: Match, e: Enriched): void {
    // under --trials-under the alert, its actions and its count are the process's trial's
    const trial = this.o.trials?.of(e.proc);
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
      // a sensor's trouble keeps its name and loss at the top, as log readers expect of monitor alerts
      sensor: e.event.type === 'sensor_trouble' ? e.event.sensor : undefined,
      lost: e.event.type === 'sensor_trouble' ? e.event.lost : undefined,
      // a serving alert says at the top whether the listener answered the canary as the original (CONTRACT.md)
      functional: e.event.type === 'probe' ? e.event.functional : undefined,
      latency_ms: Math.round((nowMs() - e.event.time) * 1000) / 1000,
    }, trial);
    // measured after the synchronous write: event in the kernel → alert on disk
    const onDiskMs = nowMs() - e.event.time;
    // actions start before anyone is told: observers never delay a freeze
    const runner = trial?.actions ?? this.actions;
    for (const a of m.rule.actions) {
      // observe mode only records the action as skipped: no promise on the hot path for it
      if (this.mode === 'observe') runner.skip(a, m.rule.id);
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
    this.counts.alerts++;
    this.counts.bySeverity[severity]++;
    this.emit('alert', info);
  }

  /** an alert the daemon raises about itself (sensor trouble, failed reload) */
  daemonAlert(rule: string, category: Category, severity: Severity, summary: string, extra: Record<string, unknown> = {}): void {
    const rec = this.write({ kind: 'alert', rule, category, severity, summary, pid: process.pid, comm: 'redline', tags: ['daemon'], actions: [], mode: this.mode, ...extra });
    this.counted(severity, { rule, category, severity, summary, pid: process.pid, seq: rec.seq });
  }

  /** a sensor can no longer see everything: an event of the daemon's own, judged by rules/monitor.yaml */
  sensorTrouble(t: SensorTrouble): void {
    if (t.lost) this.counts.lost += t.lost;
    // the fact itself, whatever the rules make of it: audit judges a trial's validity by it
    if (t.reason !== 'stderr') this.write({ kind: 'daemon', phase: 'sensor-trouble', sensor: t.sensor, reason: t.reason, lost: t.lost, detail: t.detail, signal: t.signal });
    this.ingest({ type: 'sensor_trouble', time: nowMs(), pid: process.pid, comm: 'redline', sensor: t.sensor, reason: t.reason, detail: t.detail, lost: t.lost, fail_closed: this.o.failClosed === true });
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

  /** carries out (or, in observe mode, records as skipped) one action */
  act(action: RuleAction, cause: string, eventTime?: number): Promise<ActionResult | null> {
    return this.actions.act(action, cause, eventTime);
  }

  runAction(name: ActionName, run: () => Promise<ActionResult>, cause: string, eventTime?: number): Promise<ActionResult> {
    return this.actions.runAction(name, run, cause, eventTime);
  }

  /** an operator's kill (a stop signal, the control socket): carried out in either mode */
  operatorKill(cause: string): Promise<ActionResult> {
    return this.actions.operatorKill(cause);
  }

  /** an operator's freeze: carried out in either mode, and logged even when already frozen */
  operatorFreeze(cause: string): Promise<ActionResult> {
    return this.actions.operatorFreeze(cause);
  }

  operatorThaw(cause: string): Promise<ActionResult> {
    return this.actions.operatorThaw(cause);
  }

  /** the counts at the start of the current trial (a long-running daemon runs many) */
  private trialBase: { alerts: number; lost: number; bySeverity: Record<Severity, number> } | null = null;

  beginTrial(id: string): void {
    this.trial = id;
    this.trialBase = { alerts: this.counts.alerts, lost: this.counts.lost, bySeverity: { ...this.counts.bySeverity } };
  }

  /** ends the current trial; its own alert counts (not the daemon's since start) and the events lost during it */
  endTrial(): { alerts: number; by_severity: Record<Severity, number>; tripped: boolean; lost_events: number } {
    const base = this.trialBase ?? { alerts: 0, lost: 0, bySeverity: { info: 0, low: 0, medium: 0, high: 0, critical: 0 } };
    const by = {} as Record<Severity, number>;
    for (const k of Object.keys(this.counts.bySeverity) as Severity[]) by[k] = this.counts.bySeverity[k] - base.bySeverity[k];
    this.trial = undefined;
    this.trialBase = null;
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
