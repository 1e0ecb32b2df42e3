// Freeze first: cgroup v2 cgroup.freeze, else the v1 freezer, else repeated SIGSTOP.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readEvents } from '../cgroup.js';
import { readStat, readStatus } from '../sensors/proc/read.js';
import { type Subject, subjectPids } from '../subject.js';
import { type ActionResult, elapsed, waitUntil } from './result.js';

const FREEZE_TIMEOUT_MS = 2000;

function freezerState(path: string): string {
  try {
    return readFileSync(join(path, 'freezer.state'), 'utf8').trim();
  } catch {
    return '';
  }
}

export async function freeze(s: Subject): Promise<ActionResult> {
  const t0 = performance.now();
  try {
    if (s.kind === 'cgroup2') {
      writeFileSync(join(s.path, 'cgroup.freeze'), '1');
      const ok = await waitUntil(() => readEvents(s.path).frozen === 1, FREEZE_TIMEOUT_MS);
      return { action: 'freeze', ok, latency_ms: elapsed(t0), method: 'cgroup.freeze', error: ok ? undefined : 'cgroup did not report frozen 1 in time' };
    }
    if (s.kind === 'freezer1') {
      writeFileSync(join(s.path, 'freezer.state'), 'FROZEN');
      const ok = await waitUntil(() => freezerState(s.path) === 'FROZEN', FREEZE_TIMEOUT_MS);
      return { action: 'freeze', ok, latency_ms: elapsed(t0), method: 'freezer.state', error: ok ? undefined : 'v1 freezer did not reach FROZEN in time' };
    }
    return await freezeBySignal(s, t0);
  } catch (err) {
    return { action: 'freeze', ok: false, latency_ms: elapsed(t0), error: (err as Error).message };
  }
}

/**
 * Stopped, or as good as: a zombie, gone, or a SIGSTOP queued (it runs no user code and forks
 * nothing before it stops). A process that was sent SIGSTOP needs a turn on a core to stop; on
 * a loaded host that is not waited for, or the daemon's loop would spin here.
 */
function halted(pid: number): boolean {
  return stoppedOrGone(pid) || readStatus(pid)?.stopPending === true;
}

/**
 * Repeated SIGSTOP, then a wait (that lets the loop run) until each process is really in T: a
 * queued SIGSTOP stops nothing the study can see yet, and a loaded host can take a while to give
 * the process its turn. Still queued at the timeout counts as frozen (it runs no user code before
 * it stops) and is said in `detail.pending`.
 */
async function freezeBySignal(s: Subject, t0: number): Promise<ActionResult> {
  const pids = () => subjectPids(s);
  let stopped = stopAll(pids, 50, STOP_MIN_MS);
  if (!stopped.ok) return { action: 'freeze', ok: false, latency_ms: elapsed(t0), method: 'sigstop', detail: { pids: stopped.count }, error: 'new processes kept appearing' };
  const inT = () => pids().every((pid) => pid === process.pid || stoppedOrGone(pid));
  const done = () => {
    if (inT()) return true;
    stopped = stopAll(pids, 2);
    return !stopped.ok;
  };
  const settled = await waitUntil(done, FREEZE_TIMEOUT_MS, 5);
  const pending = settled ? 0 : pids().filter((pid) => pid !== process.pid && !stoppedOrGone(pid)).length;
  return { action: 'freeze', ok: stopped.ok, latency_ms: elapsed(t0), method: 'sigstop', detail: { pids: stopped.count, pending }, error: stopped.ok ? undefined : 'new processes kept appearing' };
}

/** how long the first round of SIGSTOPs keeps at a subject that keeps forking before it gives up (well inside the watchdog's 500 ms heartbeat window: it blocks the loop) */
const STOP_MIN_MS = 200;

function stoppedOrGone(pid: number): boolean {
  const st = readStat(pid)?.state;
  return st === undefined || st === 'T' || st === 't' || st === 'Z' || st === 'X';
}

/**
 * SIGSTOP every pid, again and again, until a pass finds no pid it has not stopped: at most
 * `maxRounds` passes, and (a forking process on the other core may take a moment under load to
 * act on its SIGSTOP: CI saw 50 passes go by in 80 ms) for at least `minMs`
 */
export function stopAll(list: () => number[], maxRounds = 50, minMs = 0): { ok: boolean; count: number } {
  const stopped = new Set<number>();
  const self = process.pid;
  const t0 = performance.now();
  for (let round = 0; round < maxRounds || performance.now() - t0 < minMs; round++) {
    let fresh = 0;
    for (const pid of list()) {
      if (pid === self || stopped.has(pid)) continue;
      try {
        process.kill(pid, 'SIGSTOP');
      } catch {
        // gone already
      }
      stopped.add(pid);
      fresh++;
    }
    if (fresh === 0) {
      // one that took its SIGSTOP but is not stopped yet (or was resumed) is sent another
      const running = list().filter((pid) => pid !== self && !halted(pid));
      if (running.length === 0) return { ok: true, count: stopped.size };
      for (const pid of running) stopped.delete(pid);
    }
  }
  return { ok: false, count: stopped.size };
}

export async function thaw(s: Subject): Promise<ActionResult> {
  const t0 = performance.now();
  try {
    if (s.kind === 'cgroup2') {
      writeFileSync(join(s.path, 'cgroup.freeze'), '0');
      const ok = await waitUntil(() => readEvents(s.path).frozen !== 1, FREEZE_TIMEOUT_MS);
      return { action: 'thaw', ok, latency_ms: elapsed(t0), method: 'cgroup.freeze' };
    }
    if (s.kind === 'freezer1') {
      writeFileSync(join(s.path, 'freezer.state'), 'THAWED');
      return { action: 'thaw', ok: true, latency_ms: elapsed(t0), method: 'freezer.state' };
    }
    for (const pid of subjectPids(s)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    return { action: 'thaw', ok: true, latency_ms: elapsed(t0), method: 'sigcont' };
  } catch (err) {
    return { action: 'thaw', ok: false, latency_ms: elapsed(t0), error: (err as Error).message };
  }
}
