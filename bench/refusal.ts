// Refusal → alert: a subject (observe mode, the seccomp guard on) that sends SIGTERM to the
// daemon KILLS times, each from a fresh /bin/kill process PACE_MS apart; the filter refuses
// each one (EPERM), the libbpf loader reports it at the syscall's exit, and the alert
// (signal-monitor, critical) is written. Kernel time of the refusal → the alert's record.
// The floor: the same refused kills (the same filter, from redline-enter, naming a sleeping
// process as the monitor) seen by a bare bpftrace on sys_exit_kill, read by this process.
// Prints JSON. Needs root, bpftrace, cgroup v2 and `npm run build` (dist/, redline-enter).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGroup, findCgroupV2Mount, groupPids, removeGroup } from '../daemon/cgroup.js';
import { seccompEntry } from '../daemon/guard/index.js';
import { bareTracer } from './floor.js';
import { summary } from './stats.js';

const KILLS = Number(process.env.KILLS ?? 40);
const PACE_MS = Number(process.env.PACE_MS ?? 100);
const enter = seccompEntry();
if (!enter) throw new Error('redline-enter is not built, or this is not root on x86_64');
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const dir = mkdtempSync(join(tmpdir(), 'redline-refusal-'));

/** an agent that sends SIGTERM to the pid in $1 (default: its parent) KILLS times */
const agent = join(dir, 'agent.sh');
writeFileSync(agent, `#!/bin/sh\nt=\${1:-$PPID}\ni=0\nwhile [ $i -lt ${KILLS} ]; do /bin/kill -TERM $t 2>/dev/null; sleep ${PACE_MS / 1000}; i=$((i+1)); done\n`);
chmodSync(agent, 0o755);

try {
  const log = join(dir, 'refusal.ndjson');
  spawnSync(process.execPath, ['dist/daemon/cli.js', 'exec', '--mode', 'observe', '--socket', 'off', '--log', log, '--', agent], { stdio: 'ignore' });
  const alerts = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; rule?: string; time: number; latency_ms?: number; event?: { time: number; refused_by?: string } });
  const refused = alerts.filter((r) => r.kind === 'alert' && r.rule === 'signal-monitor' && r.event?.refused_by === 'seccomp');
  const endToEnd = refused.map((a) => a.time - (a.event?.time ?? a.time));

  // the floor: the same filter refusing the same kills, a bare bpftrace on sys_exit_kill (it fires for a refused call; sys_enter_kill does not)
  const group = join(mount, 'redline', `bench-refusal-${process.pid}`);
  createGroup(group);
  const target = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
  const tracer = await bareTracer(process.env.FLOOR_TP ?? 'syscalls:sys_exit_kill', group, process.env.FLOOR_FILTER ?? 'args->ret == -1').catch(() => null);
  let floor: number[] = [];
  if (tracer) {
    spawnSync(enter, [group, '-m', String(target.pid), '-p', '0', '--', agent, String(target.pid)], { stdio: 'ignore' });
    const t0 = Date.now();
    while (tracer.latencies.length < KILLS && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
    floor = tracer.latencies;
    tracer.stop();
  }
  target.kill('SIGKILL');
  for (let i = 0; i < 100 && groupPids(group).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  removeGroup(group);
  console.log(JSON.stringify({
    bench: 'refusal-to-alert', unit: 'ms', kills: KILLS, pace_ms: PACE_MS, alerts: refused.length,
    refusal_to_alert_record: summary(endToEnd), pipeline_latency: summary(refused.map((a) => a.latency_ms ?? Number.NaN)),
    floor_bare_bpftrace_sys_exit_kill: { events: floor.length, ...summary(floor) },
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
