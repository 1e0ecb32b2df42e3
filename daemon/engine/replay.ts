// Recording what the rules saw, and replaying it: with --record-events the pipeline logs
// each event as the rules saw it — the event and the processes it involved, flags and
// fork-time ancestry included — so that `redline rules test` can run another rule pack over
// a recorded trial and say what it would have fired. A fixture file of the same objects
// works too (fields left out take neutral defaults).
import type { SensorEvent } from '../events.js';
import type { Enriched, ProcInfo } from '../process.js';
import { ancestorsOf } from '../process.js';
import type { Match, Ruleset } from './ruleset.js';

export interface ProcSnapshot {
  pid: number;
  start?: number;
  ppid?: number;
  pgid?: number;
  sid?: number;
  uid?: number;
  comm?: string;
  exe?: string;
  args?: string[];
  subject?: boolean;
  allowed?: boolean;
  protected?: boolean;
  monitor?: boolean;
  replica?: boolean;
  replica_generation?: number;
  loaded_weights?: boolean;
  read_weights?: boolean;
  alive?: boolean;
  known?: boolean;
}

export interface ObservedEvent {
  event: SensorEvent;
  proc: ProcSnapshot & { ancestors?: ProcSnapshot[] };
  target?: (ProcSnapshot & { ancestors?: ProcSnapshot[] }) | null;
  targets?: ProcSnapshot[];
  broadcast?: boolean;
  group?: number;
  generation?: number;
  live_replicas?: number;
}

const MAX_ARGS = 32;

function flat(p: ProcInfo): ProcSnapshot {
  return {
    pid: p.pid,
    start: p.start,
    ppid: p.ppid,
    pgid: p.pgid,
    sid: p.sid,
    uid: p.uid,
    comm: p.comm,
    exe: p.exe,
    args: p.args.slice(0, MAX_ARGS),
    subject: p.subject,
    allowed: p.allowed,
    protected: p.protected,
    monitor: p.monitor,
    replica: p.replica,
    replica_generation: p.replicaGen,
    loaded_weights: p.loadedWeights,
    read_weights: p.readWeights,
    alive: p.alive,
    known: p.known,
  };
}

function withAncestors(p: ProcInfo): ProcSnapshot & { ancestors: ProcSnapshot[] } {
  return { ...flat(p), ancestors: ancestorsOf(p).map(flat) };
}

/** the record `--record-events` writes for one evaluated event */
export function observedRecord(e: Enriched): { kind: 'event'; type: 'sensor' } & ObservedEvent {
  return {
    kind: 'event',
    type: 'sensor',
    event: e.event,
    proc: withAncestors(e.proc),
    target: e.target ? withAncestors(e.target) : null,
    targets: e.targets.map(flat),
    broadcast: e.broadcast || undefined,
    group: e.group || undefined,
    generation: e.generation,
    live_replicas: e.liveReplicas,
  };
}

function info(s: ProcSnapshot, parent: ProcInfo | null): ProcInfo {
  const start = s.start ?? 0;
  return {
    key: `${s.pid}:${start}`,
    pid: s.pid,
    start,
    ppid: s.ppid ?? parent?.pid ?? 0,
    pgid: s.pgid ?? s.pid,
    sid: s.sid ?? s.pid,
    uid: s.uid ?? -1,
    comm: s.comm ?? '',
    exe: s.exe ?? '',
    args: s.args ?? [],
    parent,
    subject: s.subject ?? true,
    allowed: s.allowed ?? false,
    protected: s.protected ?? false,
    monitor: s.monitor ?? false,
    replica: s.replica ?? false,
    loadedWeights: s.loaded_weights ?? false,
    replicaGen: s.replica_generation ?? 0,
    readWeights: s.read_weights ?? false,
    alive: s.alive ?? true,
    known: s.known ?? true,
    children: new Set(),
  };
}

/** a process and its recorded ancestry, linked as the live table had them */
function rebuild(s: ProcSnapshot & { ancestors?: ProcSnapshot[] }): ProcInfo {
  let parent: ProcInfo | null = null;
  for (const a of [...(s.ancestors ?? [])].reverse()) parent = info(a, parent);
  return info(s, parent);
}

export function enrichedFrom(o: ObservedEvent): Enriched {
  return {
    event: o.event,
    proc: rebuild(o.proc ?? { pid: o.event.pid, comm: o.event.comm }),
    target: o.target ? rebuild(o.target) : null,
    targets: (o.targets ?? []).map((t) => info(t, null)),
    broadcast: o.broadcast ?? false,
    group: o.group ?? 0,
    ...(o.generation !== undefined ? { generation: o.generation } : {}),
    ...(o.live_replicas !== undefined ? { liveReplicas: o.live_replicas } : {}),
  };
}

/** is this parsed line a recorded event (a log record) or a fixture object? */
export function asObserved(v: unknown): ObservedEvent | null {
  if (v === null || typeof v !== 'object') return null;
  const r = v as Record<string, unknown>;
  if (r.kind !== undefined && !(r.kind === 'event' && r.type === 'sensor')) return null;
  const ev = r.event as { type?: unknown; pid?: unknown; time?: unknown } | undefined;
  if (!ev || typeof ev.type !== 'string' || typeof ev.pid !== 'number' || typeof ev.time !== 'number') return null;
  return r as unknown as ObservedEvent;
}

export interface Fired {
  /** the recorded event's seq in the log (fixtures: its line number) */
  at: number;
  trial: string | null;
  match: Match;
  pid: number;
}

/** runs the events through a fresh ruleset, in order, as the live pipeline did */
export function replay(ruleset: Ruleset, events: Iterable<{ at: number; trial: string | null; observed: ObservedEvent }>): Fired[] {
  const out: Fired[] = [];
  for (const { at, trial, observed } of events) {
    const e = enrichedFrom(observed);
    for (const match of ruleset.evaluate(e)) out.push({ at, trial, match, pid: e.proc.pid });
  }
  return out;
}
