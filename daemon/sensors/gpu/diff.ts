// Which GPU usage is news: pure, so the reporting rules are tested without a child process.
import type { GpuEvent } from '../../events.js';
import type { ComputeApp, GpuInfo } from './parse.js';

/** MiB last reported, per `identity:gpu_uuid` (the process identity, so a reused pid starts afresh) */
export type Reported = ReadonlyMap<string, number>;

export interface DiffOptions {
  changeMib: number;
  replicaShare: number;
  allowPids: ReadonlySet<number>;
  /** the process behind a pid now (default: the pid alone) */
  identity?: (pid: number) => string;
}

export interface Diff {
  events: GpuEvent[];
  reported: Map<string, number>;
}

/**
 * Compares one nvidia-smi snapshot with what was reported before. A process spread over
 * several GPUs (tensor parallel) is measured by its footprint, the sum over them, on both
 * sides: a replica sharded like the original is then as replica-like as one on one GPU.
 */
export function diffApps(prev: Reported, apps: readonly ComputeApp[], gpus: readonly GpuInfo[], o: DiffOptions, now: number): Diff {
  const usage = new Map<string, { pid: number; uuid: string; mib: number; unknown: boolean }>();
  const footprint = new Map<number, number>();
  for (const a of apps) {
    // without a pid there is no process to attribute the memory to
    if (a.pid === null) continue;
    const key = `${o.identity ? o.identity(a.pid) : a.pid}:${a.gpu_uuid}`;
    const mib = a.used_mib ?? 0;
    const u = usage.get(key) ?? { pid: a.pid, uuid: a.gpu_uuid, mib: 0, unknown: false };
    u.mib += mib;
    u.unknown ||= a.used_mib === null;
    usage.set(key, u);
    footprint.set(a.pid, (footprint.get(a.pid) ?? 0) + mib);
  }
  let allowed = 0;
  for (const pid of o.allowPids) allowed = Math.max(allowed, footprint.get(pid) ?? 0);
  const totals = new Map(gpus.map((g) => [g.uuid, g.total_mib]));

  const events: GpuEvent[] = [];
  const reported = new Map<string, number>();
  for (const [key, u] of usage) {
    const before = prev.get(key);
    const news = before === undefined || Math.abs(u.mib - before) >= Math.max(o.changeMib, 1);
    reported.set(key, news ? u.mib : (before ?? u.mib));
    if (!news) continue;
    const fp = footprint.get(u.pid) ?? u.mib;
    const ev: GpuEvent = {
      type: 'gpu',
      time: now,
      pid: u.pid,
      gpu_uuid: u.uuid,
      used_mib: u.mib,
      previous_mib: before ?? 0,
      footprint_mib: fp,
      allowed_mib: allowed,
      replica_like: allowed > 0 && !o.allowPids.has(u.pid) && fp >= o.replicaShare * allowed,
    };
    const total = totals.get(u.uuid);
    if (total != null) ev.total_mib = total;
    if (u.unknown) ev.used_unknown = true;
    events.push(ev);
  }
  return { events, reported };
}
