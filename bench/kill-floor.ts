// The floor under bench/kill-latency.ts: the same agent (250 fresh `/bin/kill` processes,
// paced with PACE_MS or as fast as the shell goes) in a cgroup, traced by a bare bpftrace
// program filtered on that group, read by this process. Kill syscall (kernel time) → line
// read here: what delivery costs with no redline in between. Prints JSON. Needs root,
// bpftrace and cgroup v2.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGroup, findCgroupV2Mount, groupPids, removeGroup } from '../daemon/cgroup.js';
import { bareTracer } from './floor.js';
import { summary } from './stats.js';

const KILLS = Number(process.env.KILLS ?? 250);
const PACE_MS = Number(process.env.PACE_MS ?? 0);
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const group = join(mount, 'redline', `bench-floor-${process.pid}`);
const dir = mkdtempSync(join(tmpdir(), 'redline-floor-'));
const victim = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
const script = join(dir, 'agent.sh');
const pause = PACE_MS > 0 ? ` sleep ${PACE_MS / 1000};` : '';
writeFileSync(script, `#!/bin/sh\ni=0\nwhile [ $i -lt ${KILLS} ]; do /bin/kill -CONT ${victim.pid};${pause} i=$((i+1)); done\n`);
chmodSync(script, 0o755);
createGroup(group);

const tracer = await bareTracer('syscalls:sys_enter_kill', group);
const latencies = tracer.latencies;
try {
  const agent = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$1"', group, script], { stdio: 'ignore' });
  await new Promise((r) => agent.on('exit', r));
  // the last lines still in bpftrace's buffers
  const t0 = Date.now();
  while (latencies.length < KILLS && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
  console.log(JSON.stringify({ bench: 'kill-to-bpftrace-reader (floor)', unit: 'ms', kills: KILLS, pace_ms: PACE_MS, events: latencies.length, ...summary(latencies) }));
} finally {
  tracer.stop();
  victim.kill('SIGKILL');
  const t0 = Date.now();
  while (groupPids(group).length > 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
  removeGroup(group);
  rmSync(dir, { recursive: true, force: true });
}
