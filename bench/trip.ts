// Trip → frozen, end to end: a subject of N processes signals a protected pid; the time
// from the kernel's kill event to cgroup.events saying frozen 1 (the freeze record's
// since_event_ms). Prints JSON. Needs root, bpftrace and cgroup v2.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execCommand } from '../daemon/commands/exec.js';
import { summary } from './stats.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-trip-'));
const results = [];
try {
  for (const n of [10, 100, 1000]) {
    const trip: number[] = [];
    const freezeOnly: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const victim = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
      const script = join(dir, 'agent.sh');
      writeFileSync(script, `#!/bin/sh\ni=1; while [ $i -lt ${n} ]; do sleep 600 & i=$((i+1)); done\nsleep 1\nkill -CONT ${victim.pid}\nsleep 5\n`);
      chmodSync(script, 0o755);
      const log = join(dir, `trip-${n}-${round}.ndjson`);
      await execCommand([script], { log, protectPid: [String(victim.pid)], quiet: true });
      victim.kill('SIGKILL');
      const fr = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.kind === 'action' && r.action === 'freeze');
      if (fr?.ok) {
        trip.push(fr.since_event_ms);
        freezeOnly.push(fr.latency_ms);
      }
    }
    results.push({ processes: n, trip_to_frozen: summary(trip), freeze_call: summary(freezeOnly) });
  }
  console.log(JSON.stringify({ bench: 'trip-to-frozen', unit: 'ms', results }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
