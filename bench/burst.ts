// The burst of issue 13, against raw bpftrace and against redline in the same run: an agent
// runs KILLS (default 1000) fresh `/bin/kill -CONT PID` as fast as the shell goes (~900
// processes/s on the 2-core development machine). For each of ROUNDS (default 3) rounds the
// floor (bench/kill-floor.ts: a bare bpftrace program read by a node process) and redline
// (bench/kill-latency.ts: kill → alert on disk) run back to back. Prints one JSON line per
// round with both and the ratio of their p50 and p99, then one with the medians over rounds.
// Needs root, bpftrace and cgroup v2.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const KILLS = Number(process.env.KILLS ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const here = import.meta.dirname;

interface Figures {
  n: number;
  p50: number;
  p99: number;
  max: number;
  alerts?: number;
  events?: number;
  daemon_cpu_ms?: number;
}

function run(script: string): Figures {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(here, script)], { env: { ...process.env, KILLS: String(KILLS), PACE_MS: '0' }, encoding: 'utf8', maxBuffer: 1 << 24 });
  const last = out.trim().split('\n').pop() ?? '{}';
  return JSON.parse(last) as Figures;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.floor((s.length - 1) / 2)] as number);
};
const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 10) / 10 : null);

const rounds: { floor: Figures; redline: Figures }[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const floor = run('kill-floor.ts');
  const redline = run('kill-latency.ts');
  rounds.push({ floor, redline });
  console.log(
    JSON.stringify({
      bench: 'burst', round: i + 1, kills: KILLS,
      floor: { events: floor.events, p50: floor.p50, p99: floor.p99, max: floor.max },
      redline: { alerts: redline.alerts, p50: redline.p50, p99: redline.p99, max: redline.max, daemon_cpu_ms: redline.daemon_cpu_ms },
      ratio_p50: ratio(redline.p50, floor.p50), ratio_p99: ratio(redline.p99, floor.p99),
    }),
  );
}
const m = (pick: (r: { floor: Figures; redline: Figures }) => number) => median(rounds.map(pick));
console.log(
  JSON.stringify({
    bench: 'burst', summary: `median of ${ROUNDS} rounds`, kills: KILLS,
    every_kill_alerted: rounds.every((r) => r.redline.alerts === KILLS),
    floor: { p50: m((r) => r.floor.p50), p99: m((r) => r.floor.p99) },
    redline: { p50: m((r) => r.redline.p50), p99: m((r) => r.redline.p99), alerts_min: Math.min(...rounds.map((r) => r.redline.alerts ?? 0)) },
    ratio_p99: ratio(m((r) => r.redline.p99), m((r) => r.floor.p99)),
  }),
);
