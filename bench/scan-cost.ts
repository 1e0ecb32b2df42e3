// The cost of the scan accounting (issue 20) on the burst benchmark: the agent of
// bench/burst.ts (KILLS, default 1000, fresh `/bin/kill -CONT` as fast as the shell goes),
// kill → alert on disk, with the shipped rules (the scan rules load, so the kernel reports the
// subject's /proc opens and folder listings) and with the scan rules turned off (the program
// then has no such probes), ROUNDS (default 3) rounds back to back. Then the same twice with
// the agent's shell also reading the victim's /proc/PID/stat each time (one procfs open per
// kill: the accounting's own work, a line each). Prints a JSON line per run and one with the
// medians. Needs root, bpftrace and cgroup v2.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const KILLS = Number(process.env.KILLS ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const here = import.meta.dirname;
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const off = join(dir, 'scans-off.yaml');
writeFileSync(off, ['proc-sweep', 'port-sweep', 'wide-listing'].map((r) => `- rule: ${r}\n  enabled: false\n`).join(''));

interface Figures {
  p50: number;
  p99: number;
  alerts: number;
  daemon_cpu_ms: number;
}

function run(scans: boolean, procReads: boolean): Figures {
  const env = { ...process.env, KILLS: String(KILLS), PACE_MS: '0', PROC_READS: procReads ? '1' : '0', ...(scans ? {} : { RULES_EXTRA: off }) };
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(here, 'kill-latency.ts')], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Figures;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.floor((s.length - 1) / 2)] as number);
};

try {
  const results: Record<string, Figures[]> = {};
  for (let i = 0; i < ROUNDS; i++) {
    for (const procReads of [false, true]) {
      for (const scans of [false, true]) {
        const key = `${procReads ? 'with_proc_reads' : 'burst'}_${scans ? 'scans_on' : 'scans_off'}`;
        const f = run(scans, procReads);
        (results[key] ??= []).push(f);
        console.log(JSON.stringify({ bench: 'scan-cost', round: i + 1, kills: KILLS, proc_reads: procReads, scan_accounting: scans, alerts: f.alerts, p50: f.p50, p99: f.p99, daemon_cpu_ms: f.daemon_cpu_ms }));
      }
    }
  }
  const m = (key: string, pick: (f: Figures) => number) => median((results[key] ?? []).map(pick));
  const summary: Record<string, unknown> = { bench: 'scan-cost', summary: `median of ${ROUNDS} rounds`, kills: KILLS };
  for (const key of Object.keys(results)) summary[key] = { p50: m(key, (f) => f.p50), p99: m(key, (f) => f.p99), daemon_cpu_ms: m(key, (f) => f.daemon_cpu_ms), alerts_min: Math.min(...(results[key] ?? []).map((f) => f.alerts)) };
  console.log(JSON.stringify(summary));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
