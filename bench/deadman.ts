// The dead-man's switch (issue 14): daemon death → subject frozen, a hung daemon → subject
// frozen, and what the watchdog costs while nothing happens. For each of ROUNDS (default 5) rounds an enforce `redline exec` runs a
// subject of 20 sleeping processes; once the watchdog is armed the daemon gets SIGKILL and the
// group's cgroup.events is polled every millisecond until `frozen 1`. Beside it, the floor: the
// same group frozen by writing cgroup.freeze directly (bench/freeze.ts's measure). Then the
// watchdog's CPU (% of a core) and RSS over IDLE_S (default 10) seconds of a quiet trial.
// The hang: this process is the daemon (its Deadman sends the heartbeat, a `sleep` stands in
// for the pid the watchdog kills); its event loop is blocked for 2 s and a separate poller
// notes when the group froze: the heartbeat window (500 ms) plus at most one poll.
// Prints JSON lines. Needs root, bpftrace and cgroup v2.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFreshGroup, findCgroupV2Mount, groupPids, movePid, readEvents, removeGroup } from '../daemon/cgroup.js';
import { Deadman, DEADMAN_POLL_MS } from '../daemon/deadman.js';
import { summary } from './stats.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const IDLE_S = Number(process.env.IDLE_S ?? 10);
const CLI = join(import.meta.dirname, '../daemon/cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'redline-deadman-'));
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function records(log: string): Record<string, unknown>[] {
  try {
    return readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}

/** the trial is running under its watchdog: its group, the watchdog and the daemon (the child of `redline exec`, its supervisor) */
async function armed(log: string): Promise<{ group: string; watchdog: number; daemon: number }> {
  for (;;) {
    const recs = records(log);
    const wd = recs.find((r) => r.kind === 'daemon' && r.phase === 'watchdog');
    const start = recs.find((r) => r.kind === 'trial' && r.phase === 'start');
    const daemon = recs.find((r) => r.kind === 'daemon' && r.phase === 'start');
    if (wd && start && daemon) return { group: String(start.cgroup), watchdog: Number(wd.watchdog_pid), daemon: Number(daemon.daemon_pid) };
    await sleep(20);
  }
}

/** user+system ticks and RSS (kB) of a process */
function usage(pid: number): { ticks: number; rssKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { ticks: Number(f[11]) + Number(f[12]), rssKb: Number(rss?.[1] ?? 0) };
}

const SUBJECT = 'for i in $(seq 1 20); do sleep 600 & done; wait';
const deathToFrozen: number[] = [];
const floor: number[] = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    const log = join(dir, `round-${i}.ndjson`);
    spawn(process.execPath, ['--import', 'tsx', CLI, 'exec', '--mode', 'enforce', '--socket', 'off', '--log', log, '--', 'sh', '-c', SUBJECT], { stdio: 'ignore' });
    const { group, daemon } = await armed(log);
    while (groupPids(group).length < 21) await sleep(10);
    await sleep(200);
    const t0 = performance.now();
    process.kill(daemon, 'SIGKILL');
    while (readEvents(group).frozen !== 1) await sleep(1);
    deathToFrozen.push(performance.now() - t0);
    // the floor: the same group thawed and frozen again by hand
    writeFileSync(join(group, 'cgroup.freeze'), '0');
    while (readEvents(group).frozen !== 0) await sleep(1);
    const f0 = performance.now();
    writeFileSync(join(group, 'cgroup.freeze'), '1');
    while (readEvents(group).frozen !== 1) await sleep(1);
    floor.push(performance.now() - f0);
    writeFileSync(join(group, 'cgroup.kill'), '1');
    while (groupPids(group).length > 0) await sleep(10);
    removeGroup(group);
  }
  console.log(JSON.stringify({ bench: 'deadman-death-to-frozen', unit: 'ms', rounds: ROUNDS, subject: '20 sleeping processes', watchdog_poll_ms: DEADMAN_POLL_MS, ...summary(deathToFrozen), floor_freeze: summary(floor) }));

  // the watchdog while nothing happens
  const log = join(dir, 'idle.ndjson');
  const d = spawn(process.execPath, ['--import', 'tsx', CLI, 'exec', '--mode', 'enforce', '--socket', 'off', '--log', log, '--', 'sleep', String(IDLE_S + 5)], { stdio: 'ignore' });
  const { watchdog } = await armed(log);
  await sleep(1000);
  const a = usage(watchdog);
  await sleep(IDLE_S * 1000);
  const b = usage(watchdog);
  const hz = 100;
  console.log(JSON.stringify({ bench: 'deadman-idle', seconds: IDLE_S, watchdog_cpu_pct: Math.round(((b.ticks - a.ticks) / hz / IDLE_S) * 1000) / 10, watchdog_rss_mb: Math.round(b.rssKb / 102.4) / 10 }));
  await new Promise((r) => d.on('exit', r));

  // a hung daemon
  const WINDOW_MS = 500;
  const hangToFrozen: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const group = join(mount, 'redline', `bench-hang-${process.pid}-${i}`);
    const why = createFreshGroup(group);
    if (why) throw new Error(why);
    const subject = spawn('sleep', ['600'], { stdio: 'ignore' });
    movePid(group, subject.pid as number);
    const standIn = spawn('sleep', ['600'], { stdio: 'ignore' });
    const wd = await Deadman.start({ daemonPid: standIn.pid as number, group, log: join(dir, `hang-${i}.ndjson`), freeze: true, exec: false, graceMs: 0, pollMs: DEADMAN_POLL_MS, heartbeatWindowMs: WINDOW_MS });
    const poller = spawn(process.execPath, ['-e', `const fs=require('fs');const f=process.argv[1];const t=setInterval(()=>{if(/frozen 1/.test(fs.readFileSync(f,'utf8'))){console.log(Date.now());clearInterval(t);}},1)`, join(group, 'cgroup.events')], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    poller.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    await sleep(1000);
    const t0 = Date.now();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
    await new Promise((r) => poller.on('exit', r));
    hangToFrozen.push(Number(out.trim()) - t0);
    wd.bye();
    standIn.kill('SIGKILL');
    writeFileSync(join(group, 'cgroup.kill'), '1');
    while (groupPids(group).length > 0) await sleep(10);
    removeGroup(group);
  }
  console.log(JSON.stringify({ bench: 'deadman-hang-to-frozen', unit: 'ms', rounds: ROUNDS, heartbeat_window_ms: WINDOW_MS, watchdog_poll_ms: DEADMAN_POLL_MS, ...summary(hangToFrozen) }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
