// One daemon, many sandboxes (`run --trials-under`): its CPU share and RSS (node, bpftrace,
// the libbpf loader) with 1, 10 and 50 idle sandboxes, each a group of its own under one
// parent with its own mount, pid, net and uts namespaces and a sleeping process; then trip →
// frozen for one sandbox (mount, net and uts namespaces) that signals a host process while 49
// others run (the freeze record's
// since_event_ms), beside the floor: a bare cgroup.freeze of one such group among 50.
// Prints JSON. Needs root, bpftrace, unshare and cgroup v2; `npm run build` first.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCgroupV2Mount, readEvents, removeGroup } from '../daemon/cgroup.js';
import { CLK_TCK, childNamed, cpuTicks, rssKb } from './procstat.js';
import { summary } from './stats.js';

const SECONDS = Number(process.env.TRIALS_SECONDS ?? 10);
const TRIPS = Number(process.env.TRIALS_TRIPS ?? 5);
// the listening-socket poll's period (ms): it reads each sandbox's network namespace
const PORT_MS = process.env.TRIALS_PORT_INTERVAL ?? '1000';
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const parent = join(mount, `redline-bench-trials-${process.pid}`);
const log = `/tmp/redline-bench-trials-${process.pid}.ndjson`;
mkdirSync(parent);

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const records = (): Record<string, unknown>[] => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
async function waitFor(pred: (r: Record<string, unknown>) => boolean, ms = 30_000): Promise<Record<string, unknown>> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await pause(50)) {
    const r = records().find(pred);
    if (r) return r;
  }
  throw new Error('no such record in time');
}

/** a sandbox: its group, its namespaces (a pid namespace unless it must reach a host pid), then `script` */
function sandbox(name: string, script: string, ns = '--mount --pid --net --uts'): string {
  const group = join(parent, name);
  mkdirSync(group);
  spawn('sh', ['-c', `echo $$ > ${group}/cgroup.procs && exec unshare ${ns} --fork sh -c '${script}'`], { stdio: 'ignore', detached: true }).unref();
  return group;
}

function endSandbox(group: string): void {
  try {
    writeFileSync(join(group, 'cgroup.kill'), '1');
  } catch {
    // gone
  }
}

async function removeSandbox(group: string): Promise<void> {
  endSandbox(group);
  for (let i = 0; i < 100 && !removeGroup(group); i++) await pause(20);
}

const daemon = spawn(process.execPath, ['dist/daemon/cli.js', 'run', '--trials-under', parent, '--mode', 'enforce', '--port-interval', PORT_MS, '--ws', 'off', '--socket', 'off', '--log', log], { stdio: 'ignore' });
const victim = spawn('sleep', ['3600'], { stdio: 'ignore' });
const idle: string[] = [];
try {
  await waitFor((r) => r.kind === 'daemon' && r.phase === 'trials', 60_000);
  const pid = daemon.pid as number;
  const parts = { daemon: pid, bpftrace: childNamed(pid, 'bpftrace'), loader: childNamed(pid, 'redline-loader') };
  const sandboxes: Record<string, unknown>[] = [];
  for (const n of [1, 10, 50]) {
    while (idle.length < n) idle.push(sandbox(`idle-${idle.length}`, 'sleep 3600'));
    await waitFor(() => records().filter((r) => r.kind === 'trial' && r.phase === 'start').length >= n);
    await pause(2000);
    const t0 = Object.fromEntries(Object.entries(parts).map(([k, p]) => [k, p ? cpuTicks(p) : 0]));
    await pause(SECONDS * 1000);
    const cpu = Object.fromEntries(Object.entries(parts).map(([k, p]) => [`${k}_cpu_pct`, p ? Math.round(((cpuTicks(p) - (t0[k] as number)) / CLK_TCK / SECONDS) * 10000) / 100 : null]));
    const rss = Object.fromEntries(Object.entries(parts).map(([k, p]) => [`${k}_rss_mb`, p ? Math.round(rssKb(p) / 102.4) / 10 : null]));
    sandboxes.push({ sandboxes: n, ...cpu, ...rss });
  }

  // 49 idle and one that trips, again and again
  await removeSandbox(idle.pop() as string);
  const trip: number[] = [];
  const freezeCall: number[] = [];
  for (let i = 0; i < TRIPS; i++) {
    // (no pid namespace of its own: the host process it signals must be reachable)
    const g = sandbox(`trip-${i}`, `sleep 0.5; kill -CONT ${victim.pid}; sleep 3600`, '--mount --net --uts');
    const fr = await waitFor((r) => r.kind === 'action' && r.action === 'freeze' && r.trial === `trip-${i}` && r.ok === true);
    trip.push(fr.since_event_ms as number);
    freezeCall.push(fr.latency_ms as number);
    await removeSandbox(g);
  }

  // the floor: the same freeze written by hand, one sandbox group among 50
  const floor: number[] = [];
  const g = sandbox('floor', 'sleep 3600');
  await pause(500);
  for (let i = 0; i < TRIPS; i++) {
    const t0 = performance.now();
    writeFileSync(join(g, 'cgroup.freeze'), '1');
    while (readEvents(g).frozen !== 1) await new Promise((r) => setImmediate(r));
    floor.push(Math.round((performance.now() - t0) * 1000) / 1000);
    writeFileSync(join(g, 'cgroup.freeze'), '0');
    await pause(100);
  }
  await removeSandbox(g);
  const frozenOthers = idle.filter((x) => readEvents(x).frozen === 1).length;
  console.log(
    JSON.stringify({
      bench: 'trials',
      load: `idle sandboxes (sleep in mount+pid+net+uts namespaces), ${SECONDS} s windows`,
      port_interval_ms: Number(PORT_MS),
      sandboxes,
      trip_while_49_run: { trips: TRIPS, trip_to_frozen_ms: summary(trip), freeze_call_ms: summary(freezeCall), others_frozen: frozenOthers },
      floor_bare_cgroup_freeze_ms: summary(floor),
    }),
  );
} finally {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  victim.kill('SIGKILL');
  for (const g of idle) endSandbox(g);
  for (let i = 0; i < 100 && !removeGroup(parent); i++) await pause(50);
  rmSync(log, { force: true });
}
