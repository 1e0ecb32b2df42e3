// Events/s the daemon sustains on one core before it lags (issue 13). The daemon (this
// process, its worker threads and its bpftrace) is pinned to CPU 0; the subject, one Python
// process, runs on CPU 1 and sends SIGCONT to a sleeping bystander at a steady RATE for DURATION
// seconds (no fork per event, so the generator is not the limit). A rule alerts on every signal
// with de-duplication off: each event takes the whole hot path (parse → process table →
// rules → alert sealed and written). For each rate: kernel event → alert on disk p50/p99, alerts
// vs signals sent, events the sensor lost. A rate is kept up with when every signal was
// alerted, none lost, and p99 stayed under LAG_MS (default 50). Prints one JSON line per rate,
// then the highest rate kept up with. Needs root, bpftrace, cgroup v2 and two CPUs.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execCommand } from '../daemon/commands/exec.js';
import type { AlertInfo } from '../daemon/pipeline.js';
import { Pipeline } from '../daemon/pipeline.js';
import { summary } from './stats.js';

const RATES = (process.env.RATES ?? '1000,2000,5000,10000,20000,40000').split(',').map(Number);
const DURATION = Number(process.env.DURATION ?? 2);
const LAG_MS = Number(process.env.LAG_MS ?? 50);
if (availableParallelism() < 2) throw new Error('needs two CPUs: the daemon on one, the subject on the other');

const dir = mkdtempSync(join(tmpdir(), 'redline-rate-'));
const rules = join(dir, 'every-signal.yaml');
writeFileSync(
  rules,
  [
    '- rule: every-signal',
    '  description: every signal the subject sends (a benchmark rule)',
    '  category: process.kill',
    '  severity: low',
    '  events: [signal]',
    '  condition: proc.subject',
    '  summary: "{proc.comm} sent {evt.sig_name} to pid {target.pid}"',
    '  dedup: false',
    '',
  ].join('\n'),
);
const gen = join(dir, 'gen.py');
writeFileSync(
  gen,
  `import os, signal, sys, time
victim, rate, dur = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
n = int(rate * dur)
t0 = time.perf_counter()
for i in range(n):
    ahead = t0 + i / rate - time.perf_counter()
    if ahead > 0.001:
        time.sleep(ahead)
    os.kill(victim, signal.SIGCONT)
open(sys.argv[4], 'w').write('%d %f' % (n, time.perf_counter() - t0))
`,
);
const victim = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });

let latencies: number[] = [];
const orig = Pipeline.prototype.emit;
Pipeline.prototype.emit = function (this: Pipeline, name: string | symbol, ...args: unknown[]) {
  const a = args[0] as AlertInfo | undefined;
  // the warm-up pipeline's synthetic alerts (pids beyond pid_max) are not measurements
  if (name === 'alert' && a?.on_disk_ms !== undefined && a.rule === 'every-signal' && a.pid < 4_194_304) latencies.push(a.on_disk_ms);
  return orig.call(this, name, ...args);
};

// every thread of this process now, and what it starts later (bpftrace, workers), on CPU 0
execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

const results: { rate: number; kept_up: boolean }[] = [];
try {
  for (const rate of RATES) {
    latencies = [];
    const done = join(dir, `done-${rate}`);
    const agent = join(dir, `agent-${rate}.sh`);
    writeFileSync(agent, `#!/bin/sh\nexec taskset -c 1 python3 ${gen} ${victim.pid} ${rate} ${DURATION} ${done}\n`);
    chmodSync(agent, 0o755);
    const log = join(dir, `rate-${rate}.ndjson`);
    let lost = 0;
    const res = await execCommand([agent], { mode: 'observe', log, quiet: true, socket: 'off', rules: [rules] } as Parameters<typeof execCommand>[1]);
    const end = execFileSync('grep', ['-h', '"phase":"end"', log], { encoding: 'utf8' });
    for (const line of end.trim().split('\n')) {
      const r = JSON.parse(line) as { kind?: string; lost_events?: number };
      if (r.kind === 'trial') lost = r.lost_events ?? 0;
    }
    const [sent, secs] = execFileSync('cat', [done], { encoding: 'utf8' }).split(' ').map(Number) as [number, number];
    const s = summary(latencies);
    const keptUp = s.n === sent && lost === 0 && s.p99 < LAG_MS;
    results.push({ rate, kept_up: keptUp });
    console.log(JSON.stringify({ bench: 'events-per-second-one-core', unit: 'ms', rate, achieved_rate: Math.round(sent / secs), sent, alerts: s.n, lost_events: lost, exit: res.code, ...s, kept_up: keptUp }));
  }
} finally {
  victim.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
const kept = results.filter((r) => r.kept_up).map((r) => r.rate);
const firstLag = results.find((r) => !r.kept_up)?.rate ?? null;
console.log(JSON.stringify({ bench: 'events-per-second-one-core', summary: `daemon pinned to CPU 0, subject on CPU 1, ${DURATION} s per rate, every event alerted`, sustained: kept.length > 0 ? Math.max(...kept) : 0, first_lagging_rate: firstLag, lag_ms: LAG_MS }));
