// The poll sensor (--sensor poll), three figures:
//  1. detection latency of a copy and of a replica: the agent stamps the time (date +%s%N) just
//     before it starts `cp` of a 64 MiB model / a server on a copy; the latency is the alert's
//     time minus the stamp (the pass interval, 100 ms, is most of it). 10 trials each, as root
//     in observe mode (the subject's cgroup; the placement does not change the poll).
//  2. CPU of the poll at 100 ms with 300 processes on the host: the daemon's CPU over 10 s of a
//     subject that sleeps, beside the floor (listing /proc and reading each process's stat in a
//     loop of the same period: what any poll of 300 processes costs).
//  3. ps-list against /proc: one listing of every process, each way (ps-list runs `ps`).
// Prints one JSON line per figure. Needs root and cgroup v2 (no bpftrace).
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import psList from 'ps-list';
import { execCommand } from '../daemon/commands/exec.js';
import { listPids, readStat } from '../daemon/sensors/proc/read.js';
import { makeModel } from '../tests/helpers/model.js';
import { CLK_TCK, cpuTicks } from './procstat.js';
import { summary } from './stats.js';

const TRIALS = 10;
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
chmodSync(dir, 0o755);
const SERVER = join(import.meta.dirname, '../tests/fixtures/fake_server.py');
const started: ChildProcess[] = [];

/** alert time minus the stamp the agent wrote before the step, for the first alert of `categories` */
function latencyOf(log: string, trial: string, stampFile: string, categories: string[]): number | null {
  const stamp = Number(readFileSync(stampFile, 'utf8').trim()) / 1e6;
  const alert = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((r) => r.kind === 'alert' && r.trial === trial && categories.includes(String(r.category)));
  return alert ? Number(alert.time) - stamp : null;
}

async function detection(kind: 'copy' | 'replica'): Promise<void> {
  const model = makeModel(join(dir, `model-${kind}`), 64);
  const lat: number[] = [];
  let missed = 0;
  for (let i = 0; i < TRIALS; i++) {
    const work = join(dir, `${kind}-${i}`);
    mkdirSync(work);
    const stamp = join(work, 'stamp');
    const script =
      kind === 'copy'
        ? `cd ${work}; sleep 0.3; date +%s%N > ${stamp}; cp -r ${model.dir} copy; sleep 1`
        : `cd ${work}; cp -r ${model.dir} copy; sleep 1.5; date +%s%N > ${stamp}; python3 ${SERVER} --weights copy/model.safetensors --lifetime 2`;
    const log = join(work, 'audit.ndjson');
    const trial = `bench-poll-${kind}-${i}`;
    await execCommand(['sh', '-c', script], { sensor: 'poll', mode: 'observe', log, weights: [model.dir], trial, quiet: true, socket: 'off' });
    const l = latencyOf(log, trial, stamp, kind === 'copy' ? ['weights.copy'] : ['replica.spawn', 'replica.listen', 'replica.serving']);
    if (l === null) missed++;
    else lat.push(l);
  }
  console.log(JSON.stringify({ bench: `poll-${kind}-detection`, unit: 'ms', from: 'the step starting (agent stamp)', to: 'the alert record', model_mib: 64, interval_ms: 100, trials: TRIALS, missed, ...summary(lat) }));
}

async function cpu(): Promise<void> {
  // 300 processes on the host, none of them the subject's
  const have = listPids().length;
  for (let i = have; i < 300; i++) started.push(spawn('sleep', ['120'], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 500));
  const processes = listPids().length;
  const seconds = 10;
  // the daemon, through the CLI: its own CPU ticks across the subject's sleep
  const log = join(dir, 'cpu.ndjson');
  const d = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../daemon/cli.ts'), 'exec', '--sensor', 'poll', '--mode', 'observe', '--socket', 'off', '--log', log, '--', 'sleep', String(seconds + 3)], { stdio: 'ignore' });
  started.push(d);
  await new Promise((r) => setTimeout(r, 2500));
  // the daemon is the child of `redline exec` (its supervisor)
  const daemonPid = Number(/^\{.*"daemon_pid":(\d+)/m.exec(readFileSync(log, 'utf8'))?.[1]);
  const t0 = cpuTicks(daemonPid);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const daemonPct = ((cpuTicks(daemonPid) - t0) / CLK_TCK / seconds) * 100;
  await new Promise((r) => d.on('exit', r));
  // the floor: the same listing and stat reads, in this process, every 100 ms
  const f0 = process.cpuUsage();
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    for (const pid of listPids()) readStat(pid);
    await new Promise((r) => setTimeout(r, 100));
  }
  const f = process.cpuUsage(f0);
  const floorPct = ((f.user + f.system) / 1e6 / seconds) * 100;
  console.log(JSON.stringify({ bench: 'poll-cpu', unit: '% of one core', processes, interval_ms: 100, seconds, daemon: Math.round(daemonPct * 10) / 10, floor_list_and_stat: Math.round(floorPct * 10) / 10, note: 'daemon: the whole exec process (poll, ports poll every 1 s, watchdog heartbeats)' }));
}

async function listing(): Promise<void> {
  const n = 30;
  const procMs: number[] = [];
  const psMs: number[] = [];
  for (let i = 0; i < n; i++) {
    let t = performance.now();
    for (const pid of listPids()) readStat(pid);
    procMs.push(performance.now() - t);
    t = performance.now();
    await psList({ all: true });
    psMs.push(performance.now() - t);
  }
  console.log(JSON.stringify({ bench: 'poll-listing', unit: 'ms', processes: listPids().length, runs: n, proc: summary(procMs), ps_list: summary(psMs) }));
}

try {
  await detection('copy');
  await detection('replica');
  await cpu();
  await listing();
} finally {
  for (const c of started) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
