// `run --trials-under`: the sandboxes under one parent group, each its own trial. A trial
// starts when its group appears, ends when the group empties (after it held a process) or is
// removed, and is judged on its own: its alerts, its verdict, and in enforce mode a freeze
// of its group alone. One sensor watches them all (the kernel filters on the parent).
import { existsSync } from 'node:fs';
import { ActionRunner } from '../actions/runner.js';
import { cgroupOfPid, readEvents } from '../cgroup.js';
import type { Severity } from '../events.js';
import type { ProcInfo } from '../process.js';
import type { RecordSink } from '../record-sink.js';
import { listTrialGroups, type TrialSpec, trialGroupOf, trialIdentity, type TrialIdentity } from './groups.js';

/** how often the parent is listed for new, emptied and removed groups */
export const TRIAL_SCAN_MS = 200;
/** emptied and removed groups are looked for every this many scans (a second) */
const ENDS_EVERY = 5;

const zero = (): Record<Severity, number> => ({ info: 0, low: 0, medium: 0, high: 0, critical: 0 });

export interface Trial extends TrialIdentity {
  group: string;
  actions: ActionRunner;
  meta: Record<string, string>;
  alerts: number;
  bySeverity: Record<Severity, number>;
  /** the events lost host-wide when it started (a loss while it ran is its loss too) */
  lostBase: number;
  /** it has held a process: once empty again, it has ended */
  populated: boolean;
  ending: boolean;
}

export interface TrialSetOptions {
  spec: TrialSpec;
  mount: string;
  sink: RecordSink;
  mode: () => 'observe' | 'enforce';
  failClosed: boolean;
  /** events lost so far (the pipeline's count) */
  lost: () => number;
  /** every sensor has delivered what it saw so far (the end of a trial waits for it) */
  drain: () => Promise<void>;
  /** the subject's processes outside their groups (each trial stops its own) */
  strays: () => number[];
  report: (where: string, err: unknown) => void;
}

export class TrialSet {
  private readonly trials = new Map<string, Trial>();
  /** metadata given for a group before it appeared (by group name) */
  private readonly pending = new Map<string, Record<string, string>>();
  /** a process's trial, found once (it keeps it wherever it moves: the identity, not the group) */
  private readonly byKey = new Map<string, Trial | null>();
  private readonly used = new Set<string>();
  /** groups whose trial ended when they emptied and that are still there (a new process in one is a new trial) */
  private readonly ended = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  /** every trial's group frozen for the monitor's own failure: a trial that appears later is frozen too */
  private blindFrozen: string | null = null;

  constructor(private readonly o: TrialSetOptions) {}

  start(): void {
    this.scan();
    this.timer = setInterval(() => this.scan(), TRIAL_SCAN_MS);
  }

  /** ends every trial still running (the daemon stops) */
  async stop(reason: string): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.trials.values()].map((t) => this.end(t, reason)));
  }

  list(): Trial[] {
    return [...this.trials.values()];
  }

  private scans = 0;

  /**
   * New groups begin (every scan: a trial's start comes before what it does); emptied and
   * removed ones end (every ENDS_EVERY-th scan: each is a read of each group's cgroup.events)
   */
  scan(): void {
    try {
      const present = new Set(listTrialGroups(this.o.spec));
      for (const g of present) if (!this.trials.has(g) && !this.ended.has(g)) this.begin(g);
      if (this.scans++ % ENDS_EVERY !== 0) return;
      for (const g of this.ended) if (!present.has(g) || readEvents(g).populated === 1) this.ended.delete(g);
      for (const t of this.trials.values()) {
        if (t.ending) continue;
        if (!existsSync(t.group)) void this.end(t, 'removed');
        else if (readEvents(t.group).populated === 1) t.populated = true;
        else if (t.populated) void this.end(t, 'empty');
      }
    } catch (err) {
      this.o.report('trial scan', err);
    }
  }

  private begin(group: string): Trial {
    const identity = trialIdentity(group);
    // a group made again under a name used before is a new trial: its id says so
    let id = identity.id;
    for (let n = 2; this.used.has(id); n++) id = `${identity.id}.${n}`;
    this.used.add(id);
    const meta = this.pending.get(identity.id) ?? {};
    this.pending.delete(identity.id);
    const write = (fields: { kind: string } & Record<string, unknown>) => this.o.sink.append({ ...fields, trial: id });
    const t: Trial = {
      ...identity,
      id,
      group,
      meta,
      alerts: 0,
      bySeverity: zero(),
      lostBase: this.o.lost(),
      populated: readEvents(group).populated === 1,
      ending: false,
      actions: new ActionRunner({
        subject: { kind: 'cgroup2', path: group, mount: this.o.mount },
        mode: this.o.mode,
        failClosed: this.o.failClosed,
        write,
        frozen: () => undefined,
        report: this.o.report,
        strays: () => this.o.strays().filter((pid) => this.byKey.get(this.keyOfPid(pid) ?? '') === t),
      }),
    };
    this.trials.set(group, t);
    write({
      kind: 'trial', phase: 'start', cgroup: group, container_id: identity.container_id, pod_uid: identity.pod_uid,
      meta: Object.keys(meta).length > 0 ? meta : undefined, mode: this.o.mode(), started_by: 'cgroup',
    });
    if (this.blindFrozen) void t.actions.freezeOnce(this.blindFrozen).catch((err: unknown) => this.o.report('freeze', err));
    return t;
  }

  private keyOfPid(pid: number): string | undefined {
    for (const [k] of this.byKey) if (k.startsWith(`${pid}:`)) return k;
    return undefined;
  }

  private async end(t: Trial, reason: string): Promise<void> {
    t.ending = true;
    // what its processes did last is judged before the verdict
    await this.o.drain().catch((err: unknown) => this.o.report('trial drain', err));
    this.trials.delete(t.group);
    if (reason === 'empty') this.ended.add(t.group);
    for (const [k, v] of this.byKey) if (v === t) this.byKey.delete(k);
    this.o.sink.append({
      kind: 'trial', phase: 'end', trial: t.id, reason, cgroup: t.group,
      alerts: t.alerts, by_severity: t.bySeverity, tripped: t.bySeverity.high + t.bySeverity.critical > 0,
      lost_events: this.o.lost() - t.lostBase, frozen: t.actions.frozen,
      meta: Object.keys(t.meta).length > 0 ? t.meta : undefined,
    });
  }

  /** the trial a process belongs to (null: none); found from its group once, then kept */
  of(p: ProcInfo): Trial | null {
    const known = this.byKey.get(p.key);
    if (known !== undefined) return known;
    let t: Trial | null = null;
    const group = cgroupOfPid(p.pid, this.o.mount);
    const tg = group === null ? null : trialGroupOf(group, this.o.spec);
    if (tg !== null) t = this.trials.get(tg) ?? (existsSync(tg) && this.beginsAgain(tg) ? this.begin(tg) : null);
    // gone before its group could be read: its parent's trial
    else if (group === null && p.parent) t = this.of(p.parent);
    this.byKey.set(p.key, t);
    return t;
  }

  /**
   * A group whose trial has not begun yet begins one; a group whose trial ended only when
   * something runs in it again (a late event of the ended trial's own processes — a zombie
   * still names its group — must not start a second trial for it).
   */
  private beginsAgain(group: string): boolean {
    if (!this.ended.has(group)) return true;
    if (readEvents(group).populated !== 1) return false;
    this.ended.delete(group);
    return true;
  }

  /** is the process in one of the trials' groups now (from /proc; false once it is gone) */
  containsPid(pid: number): boolean {
    const group = cgroupOfPid(pid, this.o.mount);
    return group !== null && trialGroupOf(group, this.o.spec) !== null;
  }

  /** a process has exited: its entry goes (a pid used again is another process) */
  forget(p: ProcInfo): void {
    this.byKey.delete(p.key);
  }

  counted(t: Trial, severity: Severity): void {
    t.alerts++;
    t.bySeverity[severity]++;
  }

  /** the monitor went blind: every trial's group frozen, and any that appears later */
  freezeAll(cause: string): Promise<unknown> {
    this.blindFrozen = cause;
    return Promise.all([...this.trials.values()].map((t) => t.actions.freezeOnce(cause)));
  }

  /** `trial meta GROUP key=value`: by the group's name (or path), running or not yet made */
  meta(name: string, key: string, value: string): { trial: string | null } {
    const t = [...this.trials.values()].find((x) => x.id === name || x.group === name || x.group.endsWith(`/${name}`));
    if (!t) {
      const m = this.pending.get(name) ?? {};
      m[key] = value;
      this.pending.set(name, m);
      return { trial: null };
    }
    t.meta[key] = value;
    this.o.sink.append({ kind: 'trial', phase: 'meta', trial: t.id, meta: { [key]: value } });
    return { trial: t.id };
  }
}
