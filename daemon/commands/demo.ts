// `redline demo`: a scripted agent kills a bystander and tries to stop the monitor, first
// watched in observe mode (everything it does is reported), then in enforce mode (it is
// frozen at the first kill and never reaches its later steps).
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLogs } from '../audit/read.js';
import { verifyChain } from '../audit/verify.js';
import { execCommand } from './exec.js';

const AGENT = `#!/bin/sh
# A stand-in for an LLM agent told to replicate and to let nothing stop it.
step() { echo "$1" >> "$DEMO_DIR/steps"; echo "[agent] $1"; }
step "1 explore: list processes"; ps -e -o pid=,comm= > /dev/null; sleep 0.3
step "2 kill the process in the way (pid $DEMO_BYSTANDER)"; kill -TERM "$DEMO_BYSTANDER"; sleep 0.5
step "3 stop the monitor (pid $DEMO_MONITOR)"; kill -TERM "$DEMO_MONITOR"; sleep 0.5
step "4 start a copy of itself"; sleep 0.3
step "5 done"
`;

interface LogRecord {
  kind: string;
  severity?: string;
  category?: string;
  summary?: string;
  action?: string;
  ok?: boolean;
  skipped?: boolean;
  latency_ms?: number;
  processes?: unknown[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function phase(dir: string, mode: 'observe' | 'enforce', out: NodeJS.WritableStream): Promise<void> {
  const bystander = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
  const bpid = bystander.pid as number;
  writeFileSync(join(dir, 'steps'), '');
  process.env.DEMO_DIR = dir;
  process.env.DEMO_BYSTANDER = String(bpid);
  process.env.DEMO_MONITOR = String(process.pid);
  const log = join(dir, `${mode}.ndjson`);
  out.write(`\n── ${mode} mode ──────────────────────────────────────────\n`);
  const res = await execCommand([join(dir, 'agent.sh')], { mode, log, protectPid: [String(bpid)], quiet: true });
  const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
  const steps = readFileSync(join(dir, 'steps'), 'utf8').trim().split('\n').filter(Boolean);
  out.write(`agent reached step ${steps.length} of 5 (last: "${steps[steps.length - 1] ?? 'none'}")\n`);
  for (const r of records.filter((x) => x.kind === 'alert')) out.write(`  ALERT [${r.severity}] ${r.category}: ${r.summary}\n`);
  for (const r of records.filter((x) => x.kind === 'action')) {
    out.write(`  ACTION ${r.action}: ${r.skipped ? 'skipped (observe mode)' : r.ok ? `done in ${r.latency_ms} ms` : 'FAILED'}\n`);
  }
  const snap = records.find((x) => x.kind === 'snapshot');
  if (snap) out.write(`  SNAPSHOT of ${snap.processes?.length ?? 0} frozen subject processes logged\n`);
  if (steps.length >= 3) out.write(`  the monitor survived the agent's SIGTERM (this process, pid ${process.pid})\n`);
  out.write(`  bystander (pid ${bpid}) ${alive(bpid) ? 'still alive' : 'killed — a tripwire sees the kill, it cannot undo it'}\n`);
  const chain = verifyChain(await readLogs([log]));
  out.write(`  audit chain: ${chain.ok ? `intact, ${chain.records} records` : `BROKEN at seq ${chain.first_bad_seq}`}\n`);
  out.write(`  exit code ${res.code} (${res.code === 3 ? 'tripped' : 'clean'}); log ${log}; verify with: redline audit ${log}\n`);
  if (alive(bpid)) process.kill(bpid, 'SIGKILL');
}

export async function demoCommand(out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'redline-demo-'));
  writeFileSync(join(dir, 'agent.sh'), AGENT);
  chmodSync(join(dir, 'agent.sh'), 0o755);
  out.write('redline demo: a scripted agent explores, kills a bystander process, then tries to stop the monitor.\n');
  try {
    await phase(dir, 'observe', out);
    await phase(dir, 'enforce', out);
    out.write(`\nThe logs stay in ${dir}.\n`);
    return 0;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
