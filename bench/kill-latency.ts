// Kill syscall (kernel time, from bpftrace) → alert written to the audit log, over ≥200
// kills. Each kill comes from a fresh /bin/kill process so de-duplication does not fold them.
// Prints JSON. Needs root and bpftrace.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { execCommand } from '../daemon/commands/exec.js';
import { shippedRulesDir } from '../daemon/config/schema.js';
import type { AlertInfo } from '../daemon/pipeline.js';
import { Pipeline } from '../daemon/pipeline.js';
import { summary } from './stats.js';

const KILLS = Number(process.env.KILLS ?? 250);
// PACE_MS > 0: a pause between kills (a paced agent); 0: as fast as the shell can (a burst, ~900 processes/s here)
const PACE_MS = Number(process.env.PACE_MS ?? 0);
// RULES_EXTRA: a rule file loaded after the shipped rules (bench/scan-cost.ts turns the scan rules off with one)
const RULES_EXTRA = process.env.RULES_EXTRA;
// PROC_READS=1: the agent's shell also reads the victim's /proc/PID/stat each time (the scan accounting's work)
const PROC_READS = process.env.PROC_READS === '1';
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const victim = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
const script = join(dir, 'agent.sh');
// SIGCONT changes nothing for a running sleep, so the victim survives every kill
const pause = PACE_MS > 0 ? ` sleep ${PACE_MS / 1000};` : '';
const read = PROC_READS ? ` read x < /proc/${victim.pid}/stat;` : '';
writeFileSync(script, `#!/bin/sh\ni=0\nwhile [ $i -lt ${KILLS} ]; do /bin/kill -CONT ${victim.pid};${read}${pause} i=$((i+1)); done\n`);
chmodSync(script, 0o755);

const latencies: number[] = [];
const orig = Pipeline.prototype.emit;
Pipeline.prototype.emit = function (this: Pipeline, name: string | symbol, ...args: unknown[]) {
  const a = args[0] as AlertInfo | undefined;
  // the warm-up pipeline's synthetic alerts (pids beyond pid_max) are not measurements
  if (name === 'alert' && a?.on_disk_ms !== undefined && a.category === 'process.kill' && a.pid < 4_194_304) latencies.push(a.on_disk_ms);
  return orig.call(this, name, ...args);
};

try {
  // the daemon's own CPU over the trial (this process: the pipeline and its worker threads)
  const c0 = process.cpuUsage();
  // the longest the daemon's event loop went without turning (what the watchdog's heartbeat window must allow)
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const res = await execCommand([script], { mode: 'observe', log: join(dir, 'bench.ndjson'), quiet: true, socket: 'off', ...(RULES_EXTRA ? { rules: [shippedRulesDir(), RULES_EXTRA] } : {}) });
  const cpu = process.cpuUsage(c0);
  const daemonCpuMs = Math.round((cpu.user + cpu.system) / 1000);
  loop.disable();
  const loopMaxMs = Math.round(loop.max / 1e5) / 10;
  console.log(JSON.stringify({ bench: 'kill-to-alert-on-disk', unit: 'ms', kills: KILLS, pace_ms: PACE_MS, proc_reads: PROC_READS, rules_extra: RULES_EXTRA, alerts: latencies.length, exit: res.code, daemon_cpu_ms: daemonCpuMs, loop_delay_max_ms: loopMaxMs, ...summary(latencies) }));
} finally {
  victim.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
