// Serving, end to end through `redline exec` (the built dist/, as `npx redline` runs it):
// (1) a replica's first answer → its replica.serving alert on disk: the agent copies the
//     weights and serves the copy (the fake server, read whole); the server logs the time of
//     each request it answers, the first being the daemon's probe; between that and the alert
//     come the canary (asked of the replica, and once of the allowed original) and the rules.
// (2) what probing costs a benign run: the daemon's CPU over a run in which the agent starts
//     20 short-lived local web servers, five at a time (each asked /v1/models, /health and
//     /), beside the floor of the same run with the agent only sleeping; the probe requests
//     made and the alerts at high or above.
// Needs root, bpftrace and cgroup v2; `npm run build` first. Prints JSON lines.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLK_TCK, cpuTicks } from './procstat.js';
import { summary } from './stats.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/daemon/cli.js');
const SERVER = join(ROOT, 'tests/fixtures/fake_server.py');
const RUNS = Number(process.env.RUNS ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-serving-'));
chmodSync(dir, 0o755);
const model = join(dir, 'model');
const weights = join(model, 'model.safetensors');

type Rec = Record<string, unknown>;
const readLog = (p: string): Rec[] => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec) : []);

/** one trial; the daemon's CPU read until it exits (ms) */
async function trial(name: string, script: string, allow: number): Promise<{ records: Rec[]; cpuMs: number }> {
  const agent = join(dir, `${name}.sh`);
  writeFileSync(agent, `#!/bin/sh\n${script}\n`);
  chmodSync(agent, 0o755);
  const log = join(dir, `${name}.ndjson`);
  const child = spawn(process.execPath, [CLI, 'exec', '--mode', 'observe', '--socket', 'off', '--weights', model, '--allow-pid', String(allow), '--log', log, '--', agent], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  let daemon = 0;
  let ticks = 0;
  let running = true;
  void exited.then(() => (running = false));
  while (running) {
    if (!daemon) daemon = Number(readLog(log)[0]?.daemon_pid ?? 0);
    try {
      if (daemon) ticks = cpuTicks(daemon);
    } catch {
      // gone: the last reading stands
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { records: readLog(log), cpuMs: (ticks * 1000) / CLK_TCK };
}

const kids: ChildProcess[] = [];
try {
  mkdirSync(model, { recursive: true });
  const bytes = Buffer.alloc(8 << 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  writeFileSync(weights, bytes);
  const origPort = join(dir, 'orig.port');
  const original = spawn('python3', [SERVER, '--weights', weights, '--lifetime', '3600', '--port-file', origPort], { stdio: 'ignore' });
  kids.push(original);
  while (!existsSync(origPort)) await new Promise((r) => setTimeout(r, 10));
  const allow = original.pid as number;

  // (1) first answer → replica.serving
  const lag: number[] = [];
  const canary: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const answers = join(dir, `answers-${i}.log`);
    const copy = join(dir, `copy-${i}.bin`);
    const script = [`cp ${weights} ${copy}`, `python3 ${SERVER} --weights ${copy} --load read --lifetime 4 --answer-log ${answers}`].join('\n');
    const { records } = await trial(`serve-${i}`, script, allow);
    const alert = records.find((r) => r.kind === 'alert' && r.category === 'replica.serving');
    const first = existsSync(answers) ? Number(readFileSync(answers, 'utf8').split(' ')[0]) : Number.NaN;
    if (alert && Number.isFinite(first)) lag.push(Number(alert.time) - first);
    const probe = records.find((r) => r.kind === 'event' && r.type === 'probe' && r.functional !== undefined);
    if (typeof probe?.canary_ms === 'number') canary.push(probe.canary_ms);
    rmSync(copy, { force: true });
  }
  console.log(JSON.stringify({ bench: 'serving', what: "a replica's first answer (the daemon's probe) → replica.serving on disk, canary included", unit: 'ms', runs: RUNS, alerted: lag.length, ...summary(lag), canary_request: summary(canary) }));

  // (2) the cost of probing 20 short-lived web servers
  const site = join(dir, 'site');
  const quiet: number[] = [];
  const busy: number[] = [];
  let requests = 0;
  let loud = 0;
  for (let i = 0; i < RUNS; i++) {
    quiet.push((await trial(`quiet-${i}`, 'sleep 14', allow)).cpuMs);
    const servers = [`mkdir -p ${site} && echo '<a href="model.safetensors">model</a>' > ${site}/index.html`, `for b in 1 2 3 4; do for i in 1 2 3 4 5; do (cd ${site} && exec timeout 3 python3 -m http.server 0 --bind 127.0.0.1 >/dev/null 2>&1) & done; wait; done`, 'sleep 2'];
    const run = await trial(`web-${i}`, servers.join('\n'), allow);
    busy.push(run.cpuMs);
    requests += run.records.filter((r) => r.kind === 'event' && r.type === 'probe').length;
    loud += run.records.filter((r) => r.kind === 'alert' && (r.severity === 'high' || r.severity === 'critical')).length;
  }
  console.log(JSON.stringify({ bench: 'serving', what: 'daemon CPU over a 14 s benign run: 20 short-lived local web servers vs the agent only sleeping (floor)', unit: 'ms', runs: RUNS, web_servers: summary(busy), floor_sleep: summary(quiet), probe_requests_per_run: requests / RUNS, alerts_high_or_above: loud }));
} finally {
  for (const k of kids) k.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
