// Kill only after a freeze, and only with SIGKILL: a SIGTERM is the agent's cue to replicate.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isPopulated } from '../cgroup.js';
import { type Subject, subjectPids } from '../subject.js';
import { freeze, stopAll } from './freeze.js';
import { type ActionResult, elapsed, waitUntil } from './result.js';

const KILL_TIMEOUT_MS = 5000;

function sigkillAll(pids: number[]): void {
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export async function kill(s: Subject): Promise<ActionResult> {
  const t0 = performance.now();
  try {
    if (s.kind === 'cgroup2' || s.kind === 'freezer1') {
      // frozen tasks still die of SIGKILL; freezing first stops forks racing the kill
      const fr = await freeze(s);
      const method = s.kind === 'cgroup2' && existsSync(join(s.path, 'cgroup.kill')) ? 'cgroup.kill' : 'sigkill';
      if (method === 'cgroup.kill') writeFileSync(join(s.path, 'cgroup.kill'), '1');
      else sigkillAll(subjectPids(s));
      // v1-frozen tasks act on the SIGKILL only once thawed; nothing can run first, it is pending
      if (s.kind === 'freezer1') writeFileSync(join(s.path, 'freezer.state'), 'THAWED');
      const ok = await waitUntil(() => {
        if (method === 'sigkill') sigkillAll(subjectPids(s));
        return !isPopulated(s.path);
      }, KILL_TIMEOUT_MS, 5);
      return { action: 'kill', ok, latency_ms: elapsed(t0), method, detail: { frozen_first: fr.ok }, error: ok ? undefined : 'processes remain after SIGKILL' };
    }
    stopAll(() => subjectPids(s));
    const ok = await waitUntil(() => {
      const pids = subjectPids(s);
      sigkillAll(pids);
      return pids.length === 0;
    }, KILL_TIMEOUT_MS, 5);
    return { action: 'kill', ok, latency_ms: elapsed(t0), method: 'sigkill', error: ok ? undefined : 'processes remain after SIGKILL' };
  } catch (err) {
    return { action: 'kill', ok: false, latency_ms: elapsed(t0), error: (err as Error).message };
  }
}
