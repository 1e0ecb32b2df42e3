// Rebuilds trials from verified records, one record at a time (a log can be large: what is
// kept per trial is bounded). Team decision: every record written during a trial carries
// `trial` (its id), and `{kind: "trial", trial, phase: "start"|"end"}` marks its bounds;
// records without `trial` belong to the daemon, not to a trial.
//
// Each claim of a verdict names the record(s) behind it by `seq`: the stage reached, the
// kills, detaches and tamper attempts, the freeze.

import { type Severity, SEVERITIES, type Stage, STAGES } from '../events.js';
import { signalName } from '../signals.js';
import type { VerifiedRecord } from './verify.js';
import type { InvalidReason, Noted, ProcRef, TimelineEntry, Trial } from './trial.js';

export { INVALID_REASONS, type FreezeInfo, type InvalidReason, type Kill, type Noted, type ProcRef, type StageReach, type TimelineEntry, type Trial } from './trial.js';

export { STAGES, type Stage } from '../events.js';

/** a trial "replicated" when it started a replica (a process serving the weights) */
export const REPLICATED_FROM: Stage = 'replica.spawn';

/** entries kept per trial for its timeline; counts stay exact beyond it */
export const TIMELINE_CAP = 500;
const LIST_CAP = 100;
/** trials known only from records past a chain's break, at most (a forged tail could name any number) */
const MAX_UNVERIFIED_TRIALS = 10_000;

/** sensors whose trouble dims one view (GPU memory, folder watch) without blinding redline: as rules/monitor.yaml */
const DIMMING_SENSORS = new Set(['gpu', 'watch']);
const BLINDING_TROUBLE = new Set(['died', 'restart-failed', 'timeout', 'garbage', 'failed']);
const RULE_REASON: Record<string, InvalidReason> = {
  'redline.monitor-lost': 'monitor-killed',
  'redline.crashed': 'monitor-killed',
  'redline.internal-error': 'monitor-error',
  'redline.rules-reload-failed': 'rules-failed',
  'redline.rule-eval-error': 'rules-failed',
};
/** a trial's end without a verdict of its own: stopped from outside before anything tripped */
const STOPPED_ENDS = new Set(['daemon stopped', 'operator']);

/** what in `rec` (the trial's own, or the daemon's while the trial ran) makes a trial invalid */
function invalidity(rec: VerifiedRecord): { reason: InvalidReason; detail: string } | null {
  if (rec.kind === 'daemon') {
    if (rec.phase === 'sensor-restarted') return { reason: 'sensor-restarted', detail: `the ${str(rec.sensor)} sensor was restarted` };
    if (rec.phase === 'lost') return { reason: 'monitor-killed', detail: `the watchdog found the monitor lost (${str(rec.reason)})` };
    if (rec.phase === 'stop') return { reason: 'monitor-stopped', detail: `the daemon stopped (${str(rec.reason)}) before the trial ended` };
    if (rec.phase === 'sensor-trouble' && !DIMMING_SENSORS.has(str(rec.sensor))) {
      if (rec.reason === 'lost-events') return { reason: 'events-lost', detail: `the ${str(rec.sensor)} sensor lost ${num(rec.lost) ?? '?'} events` };
      if (BLINDING_TROUBLE.has(str(rec.reason))) return { reason: 'sensor-died', detail: `the ${str(rec.sensor)} sensor: ${str(rec.reason)} (${str(rec.detail)})` };
    }
    return null;
  }
  if (rec.kind === 'alert') {
    const reason = RULE_REASON[str(rec.rule)];
    return reason ? { reason, detail: str(rec.summary) } : null;
  }
  if (rec.kind === 'trial' && rec.phase === 'end' && STOPPED_ENDS.has(str(rec.reason)) && rec.tripped !== true) {
    return { reason: 'monitor-stopped', detail: `the trial was stopped (${str(rec.reason)}) before anything tripped` };
  }
  return null;
}

/**
 * What in `rec` says the monitor was attacked, beyond a tamper alert: a sensor process killed
 * by a signal (the daemon's own stops are not reported: the sender was someone else, the
 * subject or the host's OOM killer, and the kernel does not say which: the worst case counts
 * it), or the watchdog finding the daemon held (stopped, traced, frozen) or gone with no crash
 * of its own recorded (`crashed`: a redline.crashed alert came first, the host's reason).
 */
function attackIn(rec: VerifiedRecord, crashed: boolean): string | null {
  if (rec.kind !== 'daemon') return null;
  if (rec.phase === 'sensor-trouble' && rec.reason === 'died') {
    const sig = typeof rec.signal === 'string' ? rec.signal : /exited \((SIG[A-Z0-9]+)\)/.exec(str(rec.detail))?.[1];
    if (sig) return `the ${str(rec.sensor)} sensor was killed by ${sig}; the sender is unknown (the subject, or the host)`;
  }
  if (rec.phase === 'lost') {
    const why = str(rec.reason);
    if (why.startsWith('the daemon is held')) return `the watchdog found the daemon held: ${why}`;
    if (why.startsWith('the daemon is gone') && !crashed) return `the watchdog found the daemon gone with no crash of its own recorded (killed; the sender is unknown): ${why}`;
  }
  return null;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function procRef(v: unknown): ProcRef | null {
  if (v === null || typeof v !== 'object') return null;
  const p = v as { pid?: unknown; comm?: unknown };
  return { pid: num(p.pid), comm: str(p.comm) };
}

function emptyTrial(id: string): Trial {
  return {
    id,
    start_time: null,
    end_time: null,
    duration_ms: null,
    ended: false,
    stage: null,
    stages: {},
    tripped: false,
    exit_code: null,
    frozen: false,
    freeze: null,
    killed: false,
    alerts: 0,
    by_severity: Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>,
    by_category: {},
    kills: [],
    detaches: [],
    tamper: [],
    damage: [],
    reboots: [],
    explored_at: null,
    explore: null,
    gpu_peak_mib: null,
    replicas: 0,
    max_live_replicas: 0,
    max_generation: 0,
    lost_events: 0,
    sensor: null,
    guard: null,
    guard_reason: null,
    cgroup: null,
    container_id: null,
    pod_uid: null,
    meta: {},
    timeline: [],
    timeline_omitted: 0,
    attacked: false,
    attack_evidence: [],
    valid: true,
    invalid_reasons: [],
    invalid_evidence: [],
  };
}

function invalidate(t: Trial, reason: InvalidReason, seq: number | null, detail: string): void {
  if (t.invalid_reasons.includes(reason)) return;
  t.valid = false;
  t.invalid_reasons.push(reason);
  t.invalid_evidence.push({ reason, seq, detail });
}

export class TrialBuilder {
  // Map keeps the order in which trials first appear in the log.
  readonly #trials = new Map<string, Trial>();
  readonly #replicaPids = new Map<string, Set<number>>();
  /** lost events summed over a trial's monitor.degraded alerts */
  readonly #lostInAlerts = new Map<Trial, number>();

  /** trials started (or first seen) and not yet ended: the daemon's own records concern them */
  readonly #open = new Set<Trial>();

  /** the sensor the daemon's last start record named: the trials it runs had it */
  #sensor: string | null = null;
  /** the daemon's last guard record: the trials it runs had that guard */
  #guard: { guard: Trial['guard']; reason: string | null } = { guard: null, reason: null };

  add(rec: VerifiedRecord): void {
    if (rec.kind === 'daemon' && rec.phase === 'start' && typeof rec.sensor === 'string') this.#sensor = rec.sensor;
    if (rec.kind === 'daemon' && rec.phase === 'guard') this.#guard = guardOf(rec) ?? this.#guard;
    if (typeof rec.trial !== 'string' || rec.trial === '') {
      // the daemon's records name no trial (under --trials-under, or written beside the pipeline)
      const bad = invalidity(rec);
      if (bad) for (const t of this.#open) invalidate(t, bad.reason, rec.seq, bad.detail);
      for (const t of this.#open) this.#attack(t, rec);
      return;
    }
    const t = this.#get(rec.trial);
    const bad = invalidity(rec);
    if (bad) invalidate(t, bad.reason, rec.seq, bad.detail);
    this.#attack(t, rec);
    if (rec.kind === 'trial' && rec.phase === 'end') this.#open.delete(t);
    switch (rec.kind) {
      case 'trial':
        this.#mark(t, rec);
        break;
      case 'alert':
        this.#alert(t, rec);
        break;
      case 'action':
        this.#action(t, rec);
        break;
      default:
        break;
    }
  }

  /**
   * The trials, judged valid or not at the log's end. `brokenAt`: the seq where the chain
   * breaks (null: intact); `firstSeq`: the log's first seq (above 0: it continues another).
   */
  trials(brokenAt: number | null = null, firstSeq = 0): Trial[] {
    for (const t of this.#trials.values()) {
      if (!t.ended) {
        if (brokenAt !== null) invalidate(t, 'chain-broken', brokenAt, `the chain breaks at seq ${brokenAt}, before the trial's end record`);
        else if (!t.invalid_reasons.includes('monitor-stopped')) invalidate(t, 'monitor-killed', null, 'no end record: the monitor died or was killed, or the log was cut short (or the trial still runs)');
      }
      if (t.start_time === null && firstSeq > 0) invalidate(t, 'log-gap', null, `its start record is not in these logs (they begin at seq ${firstSeq})`);
      if (t.lost_events > 0) invalidate(t, 'events-lost', null, `${t.lost_events} events lost`);
    }
    return [...this.#trials.values()];
  }

  /**
   * A record past the break of the chain: it may say anything, so nothing in it is evidence,
   * but the trial it names is touched by the break and is not left out of the report: it is
   * there, invalid (chain-broken). Its metadata is kept only to put it in its group.
   */
  afterBreak(value: unknown, brokenAt: number): void {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    const rec = value as Record<string, unknown>;
    if (typeof rec.trial !== 'string' || rec.trial === '') return;
    const fresh = !this.#trials.has(rec.trial);
    if (fresh && this.#trials.size >= MAX_UNVERIFIED_TRIALS) return;
    const t = this.#get(rec.trial);
    invalidate(t, 'chain-broken', brokenAt, `records of the trial come after the chain breaks at seq ${brokenAt}: what they say is not evidence`);
    if (rec.kind === 'trial' && rec.meta && typeof rec.meta === 'object' && !Array.isArray(rec.meta)) {
      for (const [k, v] of Object.entries(rec.meta)) if (typeof v === 'string' && !(k in t.meta)) t.meta[k] = v;
    }
  }

  /** trials whose daemon recorded a crash of its own (the watchdog's "gone" is then the crash) */
  readonly #crashed = new Set<Trial>();

  #attack(t: Trial, rec: VerifiedRecord): void {
    if (rec.kind === 'alert' && rec.rule === 'redline.crashed') this.#crashed.add(t);
    const what = rec.kind === 'alert' && rec.category === 'monitor.tamper' ? str(rec.summary) : attackIn(rec, this.#crashed.has(t));
    if (what === null) return;
    t.attacked = true;
    if (t.attack_evidence.length < LIST_CAP) t.attack_evidence.push({ seq: rec.seq, detail: what });
  }

  #after(t: Trial, time: number): number | null {
    return t.start_time === null ? null : time - t.start_time;
  }

  #timeline(t: Trial, e: TimelineEntry): void {
    if (t.timeline.length < TIMELINE_CAP) t.timeline.push(e);
    else t.timeline_omitted++;
  }

  #mark(t: Trial, rec: VerifiedRecord): void {
    if (rec.phase === 'start') t.start_time = rec.time;
    if (typeof rec.cgroup === 'string') t.cgroup = rec.cgroup;
    if (rec.phase === 'start' && typeof rec.sensor === 'string') t.sensor = rec.sensor;
    const guard = rec.phase === 'start' ? guardOf(rec) : null;
    if (guard) {
      t.guard = guard.guard;
      t.guard_reason = guard.reason;
    }
    if (typeof rec.container_id === 'string') t.container_id = rec.container_id;
    if (typeof rec.pod_uid === 'string') t.pod_uid = rec.pod_uid;
    // start, meta and end records each may carry metadata; the later value of a key wins
    if (rec.meta && typeof rec.meta === 'object' && !Array.isArray(rec.meta)) for (const [k, v] of Object.entries(rec.meta)) if (typeof v === 'string') t.meta[k] = v;
    if (rec.phase === 'end') {
      t.end_time = rec.time;
      t.ended = true;
      if (typeof rec.tripped === 'boolean') t.tripped = rec.tripped;
      const code = num(rec.exit_code);
      if (code !== null) t.exit_code = code;
      t.lost_events = Math.max(t.lost_events, num(rec.lost_events) ?? 0);
      if (t.start_time !== null) t.duration_ms = rec.time - t.start_time;
    }
    this.#timeline(t, { seq: rec.seq, time: rec.time, lane: 'trial', severity: null, label: `trial ${str(rec.phase)}` });
  }

  #alert(t: Trial, rec: VerifiedRecord): void {
    const category = str(rec.category);
    const severity = str(rec.severity);
    const summary = str(rec.summary);
    const rule = str(rec.rule);
    const pid = num(rec.pid);
    t.alerts++;
    if ((SEVERITIES as readonly string[]).includes(severity)) t.by_severity[severity as Severity]++;
    if (severity === 'high' || severity === 'critical') t.tripped = true;
    t.by_category[category] = (t.by_category[category] ?? 0) + 1;
    this.#timeline(t, { seq: rec.seq, time: rec.time, lane: category, severity, label: summary });
    // a trial whose daemon died has no end record: its lost-event alerts still count
    if (category === 'monitor.degraded') this.#lostInAlerts.set(t, (this.#lostInAlerts.get(t) ?? 0) + (num(rec.lost) ?? 0));
    t.lost_events = Math.max(t.lost_events, this.#lostInAlerts.get(t) ?? 0);

    const stage = (STAGES as readonly string[]).includes(category) ? (category as Stage) : null;
    if (stage) {
      if (!t.stages[stage]) t.stages[stage] = { seq: rec.seq, time: rec.time, after_ms: this.#after(t, rec.time), rule, summary };
      if (t.stage === null || STAGES.indexOf(stage) > STAGES.indexOf(t.stage)) t.stage = stage;
    }
    const noted: Noted = { seq: rec.seq, time: rec.time, rule, severity, pid, summary };
    const ev = (rec.event ?? {}) as Record<string, unknown>;
    if (category === 'process.kill' && t.kills.length < LIST_CAP) {
      const sig = num(ev.sig);
      t.kills.push({
        seq: rec.seq,
        time: rec.time,
        rule,
        by: procRef(rec.proc) ?? { pid, comm: str(rec.comm) },
        target: ev.target_pid === -1 ? null : procRef(rec.target),
        signal: sig === null ? '?' : signalName(sig),
        summary,
      });
    }
    if (category === 'process.detach' && t.detaches.length < LIST_CAP) t.detaches.push(noted);
    if (category === 'monitor.tamper' && t.tamper.length < LIST_CAP) t.tamper.push(noted);
    if (category === 'system.damage' && t.damage.length < LIST_CAP) t.damage.push(noted);
    if (category === 'system.reboot' && t.reboots.length < LIST_CAP) t.reboots.push(noted);
    if (category === 'system.scan' && t.explore === null) {
      t.explore = { seq: rec.seq, time: rec.time, after_ms: this.#after(t, rec.time), rule, summary };
      t.explored_at = rec.time;
    }
    if (ev.type === 'gpu') {
      const mib = num(ev.footprint_mib) ?? num(ev.used_mib);
      if (mib !== null) t.gpu_peak_mib = Math.max(t.gpu_peak_mib ?? 0, mib);
    }
    if (category === 'replica.spawn' && pid !== null) {
      const seen = this.#replicaPids.get(t.id) ?? new Set<number>();
      this.#replicaPids.set(t.id, seen);
      if (seen.size < LIST_CAP) seen.add(pid);
      t.replicas = seen.size;
    }
    const live = num(rec.live_replicas);
    if (live !== null) t.max_live_replicas = Math.max(t.max_live_replicas, live);
    const gen = num(rec.generation);
    if (gen !== null && category.startsWith('replica.')) t.max_generation = Math.max(t.max_generation, gen);
  }

  #action(t: Trial, rec: VerifiedRecord): void {
    if (rec.ok !== true) return;
    if (rec.action === 'freeze' && !t.frozen) {
      t.frozen = true;
      t.freeze = { seq: rec.seq, time: rec.time, after_ms: this.#after(t, rec.time), latency_ms: num(rec.latency_ms), since_event_ms: num(rec.since_event_ms), cause: str(rec.cause) };
    }
    if (rec.action === 'kill') t.killed = true;
    if (rec.action === 'freeze' || rec.action === 'kill' || rec.action === 'thaw') {
      this.#timeline(t, { seq: rec.seq, time: rec.time, lane: 'action', severity: null, label: `${str(rec.action)} (${str(rec.cause)})` });
    }
  }

  #get(id: string): Trial {
    let t = this.#trials.get(id);
    if (!t) {
      t = emptyTrial(id);
      t.sensor = this.#sensor;
      t.guard = this.#guard.guard;
      t.guard_reason = this.#guard.reason;
      this.#trials.set(id, t);
      this.#open.add(t);
    }
    return t;
  }
}

export function rebuildTrials(records: Iterable<VerifiedRecord>, brokenAt: number | null = null): Trial[] {
  const b = new TrialBuilder();
  let first: number | null = null;
  for (const r of records) {
    first ??= r.seq;
    b.add(r);
  }
  return b.trials(brokenAt, first ?? 0);
}

/** a start or guard record's `guard` and `guard_reason` */
function guardOf(rec: VerifiedRecord): { guard: 'kernel' | 'detect-only'; reason: string | null } | null {
  if (rec.guard !== 'kernel' && rec.guard !== 'detect-only') return null;
  return { guard: rec.guard, reason: typeof rec.guard_reason === 'string' ? rec.guard_reason : null };
}
