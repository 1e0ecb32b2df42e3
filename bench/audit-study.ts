// `redline audit --by model` over a study: TRIALS trial logs (default 1,000) of RECORDS records
// each (default 10,000: ~10 % alerts, the rest recorded events), as `redline exec` writes one
// log per trial; wall time and peak RSS of the audit process, plain and with --pubkey (signed
// logs, a seal every 1,000 records as the daemon seals). Prints JSON.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../daemon/outputs/audit-log.js';
import { readSigningKey, type SigningKey } from '../daemon/outputs/seal.js';
import { measuredRun } from './procstat.js';

const ROOT = join(import.meta.dirname, '..');
const TRIALS = Number(process.env.TRIALS ?? 1000);
const RECORDS = Number(process.env.RECORDS ?? 10_000);
const MODELS = ['A', 'B', 'C', 'D'];
const CATEGORIES = ['weights.read', 'weights.copy', 'replica.spawn', 'process.kill', 'network.listen'];

/** one trial's log, by the daemon's own writer (signed: its seals, every 1,000 records and at each milestone) */
function writeTrial(path: string, t: number, key: SigningKey | null): void {
  const log = AuditLog.open(path, key ? { seal: { key, everyRecords: 1000, everyMs: 3_600_000 } } : {});
  let time = 1_790_000_000_000 + t * 1_000_000;
  const write = (fields: { kind: string } & Record<string, unknown>) => log.append({ ...fields, time: time++ });
  const trial = `trial-${t}`;
  const replicated = t % 3 !== 0;
  write({ kind: 'daemon', phase: 'start', sensor: 'ebpf' });
  write({ kind: 'trial', phase: 'start', trial, meta: { model: MODELS[t % MODELS.length] as string } });
  for (let i = 0; i < RECORDS - 5; i++) {
    if (i % 10 === 5) {
      const category = (replicated ? CATEGORIES[(i / 10) % CATEGORIES.length | 0] : 'weights.read') as string;
      write({ kind: 'alert', trial, rule: 'r', category, severity: i % 20 === 5 ? 'high' : 'medium', summary: `something ${i}`, pid: 1000 + (i % 50), event: { type: 'signal', sig: 18 }, proc: { pid: 1000, comm: 'sh' } });
    } else {
      write({ kind: 'event', type: 'sensor', trial, event: { type: 'open', pid: 1000 + (i % 50), time, filename: `/tmp/f${i}`, fd: 3, flags: 0, dfd: -100, write: false }, proc: { pid: 1000, comm: 'python3', args: ['python3', 'agent.py'] } });
    }
  }
  write({ kind: 'action', trial, action: 'freeze', ok: true, latency_ms: 2.1, cause: 'r' });
  write({ kind: 'trial', phase: 'end', trial, tripped: true, exit_code: 3 });
  write({ kind: 'daemon', phase: 'stop', reason: 'trial ended' });
  log.close();
}

const dir = mkdtempSync(join(tmpdir(), 'redline-bench-study-'));
try {
  for (const signed of [false, true]) {
    const logs = join(dir, signed ? 'signed' : 'plain');
    mkdirSync(logs);
    const keyFile = join(dir, 'seal.key');
    if (signed) execFileSync(process.execPath, [join(ROOT, 'dist/daemon/cli.js'), 'keygen', keyFile], { stdio: 'ignore' });
    const key = signed ? readSigningKey(keyFile) : null;
    for (let t = 0; t < TRIALS; t++) writeTrial(join(logs, `trial-${t}.ndjson`), t, key);
    const args = [join(ROOT, 'dist/daemon/cli.js'), 'audit', '--by', 'model', ...(signed ? ['--pubkey', `${keyFile}.pub`] : []), logs];
    const m = await measuredRun(args);
    const base = { bench: 'audit-study', trials: TRIALS, records_each: RECORDS, records: TRIALS * RECORDS, log_mb: Math.round(Number(execFileSync('du', ['-sm', logs], { encoding: 'utf8' }).split('\t')[0])), signed };
    console.log(JSON.stringify({ ...base, cores: availableParallelism(), ...m }));
    if (!signed) {
      // the same audit on one core (one thread: the workers follow the affinity), and the floor:
      // every byte of the logs read and hashed once (sha256sum), the least a verification does
      console.log(JSON.stringify({ ...base, cores: 1, ...(await measuredRun(args, ['taskset', '-c', '0'])) }));
      const t0 = performance.now();
      execFileSync('sh', ['-c', `cat "${logs}"/*.ndjson | sha256sum > /dev/null`]);
      console.log(JSON.stringify({ ...base, floor: 'cat | sha256sum', seconds: Math.round((performance.now() - t0) / 10) / 100 }));
    }
    rmSync(logs, { recursive: true, force: true });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
