// The pipeline's own cost per event, in process, without the kernel or bpftrace: a burst of
// fork/exec/signal/exit events of short-lived shell children (the shape of `kill` in a loop)
// through the table, the shipped rules and the log formatting, into a sink that writes
// nowhere. Isolates what redline adds per event (the ingress and the error funnel included).
// Prints JSON: microseconds per event, wall and CPU (user + system, less disturbed by other
// load on the host), median of ROUNDS rounds. No root needed.
import { join } from 'node:path';
import { loadRules } from '../daemon/engine/load.js';
import { Ruleset } from '../daemon/engine/ruleset.js';
import type { SensorEvent } from '../daemon/events.js';
import { AuditLog } from '../daemon/outputs/audit-log.js';
import { Pipeline } from '../daemon/pipeline.js';
import { ProcessTable } from '../daemon/process-table.js';
import { summary } from './stats.js';

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const PROCS = Number(process.env.PROCS ?? 2000);
const ruleset = loadRules([join(import.meta.dirname, '../rules')]).ruleset;
if (!ruleset) throw new Error('the shipped rules do not load');

// pids above the kernel's pid_max never exist, so /proc lookups fail fast as for a vanished process
const BASE = 5_000_000;
function burst(): SensorEvent[] {
  const t = Date.now();
  const out: SensorEvent[] = [];
  for (let i = 0; i < PROCS; i++) {
    const pid = BASE + 1 + i;
    out.push({ type: 'fork', time: t, pid: BASE, child_pid: pid, comm: 'sh' });
    out.push({ type: 'exec', time: t, pid, comm: 'kill', filename: '/bin/kill' });
    out.push({ type: 'signal', time: t, pid, comm: 'kill', syscall: 'kill', target_pid: 1, sig: 18 });
    out.push({ type: 'exit', time: t, pid, comm: 'kill' });
  }
  return out;
}

const perEvent: number[] = [];
const cpuPerEvent: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const table = new ProcessTable({ isSubject: () => false, keepExitedMs: 0 });
  const sink = AuditLog.open(`/nonexistent/redline-bench-${process.pid}`, { write: () => undefined });
  // a fresh de-duplication state each round, as a new trial has
  const p = new Pipeline({ table, ruleset: new Ruleset(ruleset.rules), subject: { kind: 'uid', uid: 4294967294 }, sink, mode: 'observe' });
  // as `exec` has: the terminal printer and the live hook
  p.on('alert', () => undefined);
  p.on('frozen', () => undefined);
  const events = burst();
  // before issue 11 the pipeline's entry was handle(); ingest() is the one entry now
  const enter = (typeof (p as { ingest?: unknown }).ingest === 'function' ? (p as unknown as { ingest: (e: SensorEvent) => void }).ingest : p.handle).bind(p);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (const ev of events) enter(ev);
  const c = process.cpuUsage(c0);
  perEvent.push(((performance.now() - t0) * 1000) / events.length);
  cpuPerEvent.push((c.user + c.system) / events.length);
  sink.close();
}
console.log(JSON.stringify({ bench: 'pipeline-per-event', unit: 'us', events_per_round: PROCS * 4, rounds: ROUNDS, wall: summary(perEvent), cpu: summary(cpuPerEvent) }));
