// Trip → frozen: cgroup v2 freeze of a subject of 10, 100 and 1000 processes (half busy,
// half sleeping), measured from the freeze call until cgroup.events says frozen 1.
// Prints JSON. Needs root and cgroup v2.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freeze, thaw } from '../daemon/actions/freeze.js';
import { kill } from '../daemon/actions/kill.js';
import { createGroup, findCgroupV2Mount, groupPids, removeGroup } from '../daemon/cgroup.js';
import type { Subject } from '../daemon/subject.js';
import { summary } from './stats.js';

const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const ROUNDS = 5;
const results = [];
for (const n of [10, 100, 1000]) {
  const path = join(mount, 'redline', `bench-freeze-${process.pid}-${n}`);
  createGroup(path);
  const subject: Subject = { kind: 'cgroup2', path, mount };
  const busy = Math.floor(n / 2);
  const script = `i=0; while [ $i -lt ${busy} ]; do (while :; do :; done) & i=$((i+1)); done; i=0; while [ $i -lt ${n - busy - 1} ]; do sleep 600 & i=$((i+1)); done; wait`;
  spawn('/bin/sh', ['-c', `echo $$ > ${path}/cgroup.procs; exec sh -c '${script}'`], { stdio: 'ignore', detached: true });
  const t0 = Date.now();
  while (groupPids(path).length < n && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
  const lat: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = await freeze(subject);
    if (r.ok) lat.push(r.latency_ms);
    await thaw(subject);
    await new Promise((r) => setTimeout(r, 100));
  }
  const k = await kill(subject);
  removeGroup(path);
  results.push({ processes: groupPids(path).length || n, rounds: ROUNDS, kill_ms: k.latency_ms, ...summary(lat) });
}
console.log(JSON.stringify({ bench: 'freeze', unit: 'ms', results }));
