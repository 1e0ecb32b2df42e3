// sensors → inbox → enrich (ingress, process table) → analyzers → rules → actions → log.
// Every event enters through the inbox (ingest() pushes there) and is drained one at a time;
// the routing below is the one place that says which analyzer sees which event type, and what
// an analyzer derives goes back to the inbox, judged after the event that caused it. Nothing
// on this path may end the daemon: an error becomes a monitor.degraded alert and, where the
// subject can no longer be watched, a freeze.
import { EventEmitter } from 'node:events';
import { nowMs } from './clock.js';
import type { ActionName, ActionResult } from './actions/result.js';
import { ActionRunner } from './actions/runner.js';
import type { Snapshot } from './actions/snapshot.js';
import type { RuleAction } from './engine/schema.js';
import type { Ruleset } from './engine/ruleset.js';
import type { Category, ListenEvent, SensorEvent, Severity } from './events.js';
import { emitEach } from './emit-each.js';
import { ErrorFunnel } from './funnel.js';
import { Ingress } from './enrich/ingress.js';
import { Inbox } from './inbox.js';
import { Judge } from './judge.js';
export type { AlertInfo } from './judge.js';
import { MonitorSignals } from './monitor-signals.js';
import { ancestorsOf, type Enriched } from './process.js';
import type { ProcessTable } from './process-table.js';
import type { PortPoller } from './sensors/ports/poll.js';
import type { ProbeScheduler } from './analyze/probes.js';
import type { OrphanCheck } from './analyze/orphans.js';
import type { DiskWatch } from './analyze/disk.js';
import type { ScanTracker } from './analyze/scans.js';
import type { SensorTrouble } from './sensors/sensor.js';
import type { WeightsTracker } from './analyze/weights/tracker.js';
import type { Subject } from './subject.js';
import { strayPids } from './strays.js';
import { acrossTrials } from './trials/across.js';
import type { Trial, TrialSet } from './trials/trial-set.js';
import { Tally } from './tally.js';
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
  /** an analyzer derived an event (the metrics count events by their source) */
  counted?: (source: string) => void;
}

/** the analyzers, which learn from the sensors' events, and the enrich step every open passes */
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

// a signal whose target is not yet known may have been sent to a child whose fork event
// is still in another CPU's buffer: look again after this long
const LATE_TARGET_MS = 20;

export class Pipeline extends EventEmitter {
  ruleset: Ruleset;
  mode: 'observe' | 'enforce';
  trial: string | undefined;
  readonly actions: ActionRunner;
  private readonly stages: Stages;
  private readonly ingress: Ingress;
  private readonly funnel: ErrorFunnel;
  /** the only way in: sensors and analyzers' late finds push here */
  readonly inbox: Inbox;
  private readonly monitorSignals = new MonitorSignals();
  private readonly tally = new Tally();
  readonly counts = this.tally.counts;
  /** rules → actions → log */
  private readonly judge: Judge;

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
    this.funnel = new ErrorFunnel((key, err, where) => this.judge.blinded('redline.internal-error', `internal error: ${key}`, { where, error: err.stack?.split('\n').slice(0, 6).join('\n') }));
    this.judge = new Judge({
      ruleset: () => this.ruleset, mode: () => this.mode, write: (fields, trial) => this.write(fields, trial), actions: this.actions, trials: o.trials,
      failClosed: o.failClosed === true, recordEvents: o.recordEvents === true, funnel: this.funnel, tally: this.tally, alerted: (info) => this.emit('alert', info),
    });
    this.inbox = new Inbox({ handle: (ev) => this.route(ev), report: (where, err) => this.funnel.report(where, err) });
  }

  /** live processes that are the subject's business outside its group (see RunnerOptions.strays) */
  strayPids(): number[] {
    return strayPids(this.o.table, this.o.subject);
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

  /** into the inbox: judged now, or, while another event is being judged, right after it (never thrown) */
  ingest(raw: SensorEvent): void {
    this.inbox.push(raw);
  }

  /** which analyzers see which event, in the order that loses nothing; what they derive is judged after it */
  private route(ev: SensorEvent): void {
    const st = this.stages;
    switch (ev.type) {
      case 'file_bytes': {
        // the kernel flags the subject's scope (its cgroup or uid); the libbpf loader cannot see
        // the lineage, so a process that left the scope is known as the subject's by the table
        const b = !ev.subject && this.o.table.get(ev.pid)?.subject ? { ...ev, subject: true } : ev;
        // host-wide: most of it is other processes' business and goes no further
        if (!b.subject && !st.weights?.concerns(b)) return;
        const e = this.apply(b);
        const derived = this.stage('weights', () => st.weights?.observeBytes(b, e.proc.key));
        if (!b.subject) return this.derive(derived, 'weights');
        const fill = b.write ? this.stage('disk', () => st.disk?.wrote(b)) : null;
        this.judge.evaluate(e);
        this.derive(derived, 'weights');
        return this.derive1(fill, 'disk');
      }
      case 'enospc':
        if (ev.subject || this.o.table.get(ev.pid)?.subject) this.derive1(this.stage('disk', () => st.disk?.refused(ev)), 'disk');
        return;
      case 'proc_read':
        // a name relative to a folder of /proc is not counted (ps and its kin give whole names)
        return this.derive1(this.stage('scans', () => st.scans?.procRead(ev.pid, ev.comm, ev.filename, ev.time)), 'scans');
      case 'listing':
        return this.derive1(this.stage('scans', () => st.scans?.listed(ev)), 'scans');
      case 'file_change':
        return this.judge.evaluate(this.apply(this.ingress.changed(ev)));
      case 'open':
      case 'link': {
        // the ingress names the file first: the event the rules see is the named one
        const { event, file } = ev.type === 'open' ? this.ingress.opened(ev) : { event: this.ingress.linked(ev), file: null };
        const e = this.apply(event);
        // (guarded inline, not through stage(): every process opens files, a closure each adds up)
        let derived: readonly SensorEvent[] | undefined;
        let scan: SensorEvent | null | undefined;
        try {
          derived = st.weights?.observe(event, file, e.proc.key);
          // (every open of a /proc file, when a rule asks for all reads: the kernel sends no Q line then)
          if (event.type === 'open' && event.path?.startsWith('/proc/') && e.proc.subject) scan = st.scans?.procRead(event.pid, event.comm, event.path, event.time);
        } catch (err) {
          this.funnel.report('weights or scan stage', err);
        }
        this.judge.evaluate(e);
        this.derive(derived, 'weights');
        return this.derive1(scan, 'scans');
      }
      case 'listen': {
        // a reader of the weights that listens is a loader at once: its load is judged first
        // (it made the reader a replica before it listened), then this listen, as a replica's
        const key = this.o.table.get(ev.pid)?.key;
        const load = key ? this.stage('weights', () => st.weights?.listened(key)) : undefined;
        if (load && load.length > 0) {
          this.derive(load, 'weights');
          return this.inbox.push(ev);
        }
        // eBPF saw it: the ports sensor need only see it close
        if (ev.seen_by !== 'poll') this.stage('ports', () => st.ports?.claim(ev));
        this.record({ kind: 'event', type: 'port.listen', pid: ev.pid, comm: ev.comm ?? this.o.table.get(ev.pid)?.comm, proto: ev.proto, addr: ev.addr, port: ev.port, inode: ev.inode, seen_by: ev.seen_by });
        return this.judgeListen(ev);
      }
      case 'connect': {
        const e = this.apply(ev);
        this.stage('weights', () => st.weights?.connected(ev, e.proc.key));
        const scan = this.stage('scans', () => st.scans?.connected(ev));
        this.judge.evaluate(e);
        return this.derive1(scan, 'scans');
      }
      case 'weights_withdrawn':
        this.record({ kind: 'event', type: 'weights.copy-withdrawn', pid: ev.pid, comm: ev.comm, path: ev.path, weight: ev.weight, reason: ev.reason });
        return this.handle(ev);
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
        let derived: readonly SensorEvent[] | undefined;
        try {
          st.orphans?.exited(e.proc);
          derived = st.weights?.exited(e.proc.key, ev.time);
          st.scans?.exited(ev.pid);
        } catch (err) {
          this.funnel.report('exit stages', err);
        }
        this.judge.evaluate(e);
        return this.derive(derived, 'weights');
      }
      default:
        return this.handle(ev);
    }
  }

  /** what an analyzer derived from the event just judged: next in the inbox */
  private derive(events: readonly SensorEvent[] | undefined, source: string): void {
    if (!events) return;
    for (const d of events) {
      this.inbox.push(d);
      this.o.counted?.(source);
    }
  }

  private derive1(ev: SensorEvent | null | undefined, source: string): void {
    if (!ev) return;
    this.inbox.push(ev);
    this.o.counted?.(source);
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
      if (this.o.trials) acrossTrials(this.o.trials, e);
      if (e.targets.some((t) => t.monitor) || e.target?.monitor) this.monitorSignals.noted(ev.sig, ev.pid);
      if (e.target && !e.target.known && !e.broadcast && e.group === 0 && !ev.target_unresolved) {
        setTimeout(() => this.ingestLate(ev), LATE_TARGET_MS);
        return;
      }
    }
    this.judge.evaluate(e);
  }

  private ingestLate(ev: SensorEvent): void {
    try {
      const e = this.o.table.apply(ev);
      if (ev.type === 'signal' && this.o.trials) acrossTrials(this.o.trials, e);
      this.judge.evaluate(e);
    } catch (err) {
      this.funnel.report(`${ev.type} event`, err);
    }
  }

  private apply(ev: SensorEvent): Enriched {
    this.counts.events++;
    return this.o.table.apply(ev);
  }

  /** an alert the daemon raises about itself (sensor trouble, failed reload) */
  daemonAlert(rule: string, category: Category, severity: Severity, summary: string, extra: Record<string, unknown> = {}): void {
    this.judge.daemonAlert(rule, category, severity, summary, extra);
  }

  /** a sensor can no longer see everything: an event of the daemon's own, judged by rules/monitor.yaml */
  sensorTrouble(t: SensorTrouble): void {
    if (t.lost) this.counts.lost += t.lost;
    // the fact itself, whatever the rules make of it: audit judges a trial's validity by it
    if (t.reason !== 'stderr') this.write({ kind: 'daemon', phase: 'sensor-trouble', sensor: t.sensor, reason: t.reason, lost: t.lost, detail: t.detail, signal: t.signal });
    this.ingest({ type: 'sensor_trouble', time: nowMs(), pid: process.pid, comm: 'redline', sensor: t.sensor, reason: t.reason, detail: t.detail, lost: t.lost, fail_closed: this.o.failClosed === true });
  }

  /** did a subject process signal the monitor with `sig` around now? (for SIGTERM handling) */
  signalledBySubject(sig: number, withinMs = 2000): boolean {
    return this.monitorSignals.sentRecently(sig, withinMs);
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

  beginTrial(id: string): void {
    this.trial = id;
    this.tally.begin();
  }

  /** ends the current trial; its own alert counts (not the daemon's since start) and the events lost during it */
  endTrial(): ReturnType<Tally['end']> {
    this.trial = undefined;
    return this.tally.end();
  }

  worst(): Severity | null {
    return this.tally.worst();
  }

  tripped(): boolean {
    return this.tally.tripped();
  }
}
