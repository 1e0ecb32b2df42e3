// The cost of --sign-key: records a second through the audit log writer (synchronous writes to
// a real file) with and without seals, a seal every 1000 records (the default) and every 100;
// then `redline audit` over a signed log of 1 M records with and without --pubkey. Prints JSON.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../daemon/outputs/audit-log.js';
import { generateKeyFiles, readSigningKey, type SigningKey } from '../daemon/outputs/seal.js';
import { measuredRun } from './procstat.js';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const WRITES = Number(process.env.SEAL_WRITES ?? 200_000);
const AUDIT_RECORDS = Number(process.env.SEAL_AUDIT_RECORDS ?? 1_000_000);

/** an alert as the pipeline writes one (a few hundred bytes) */
const alert = (i: number) => ({ kind: 'alert', trial: 't-bench', rule: 'signal-outside-tree', category: 'process.kill', severity: 'high', summary: `sh (pid ${1000 + (i % 50)}) sent SIGKILL to python3 (pid 77)`, pid: 1000 + (i % 50), comm: 'sh', tags: ['kill'], actions: ['freeze'], mode: 'observe', event: { type: 'signal', sig: 9, target_pid: 77 }, latency_ms: 0.4 });

function writeLog(path: string, n: number, key: SigningKey | null, everyRecords: number): number {
  const log = AuditLog.open(path, key ? { seal: { key, everyRecords, everyMs: 3_600_000 } } : {});
  const t0 = performance.now();
  log.append({ kind: 'trial', phase: 'start', trial: 't-bench' });
  for (let i = 0; i < n; i++) log.append(alert(i));
  log.append({ kind: 'trial', phase: 'end', trial: 't-bench' });
  log.close();
  return performance.now() - t0;
}

try {
  const keyFile = join(dir, 'k');
  generateKeyFiles(keyFile);
  const key = readSigningKey(keyFile);
  for (const [label, k, every] of [['unsigned', null, 0], ['signed, a seal every 1000', key, 1000], ['signed, a seal every 100', key, 100]] as const) {
    const runs: number[] = [];
    for (let r = 0; r < 3; r++) {
      const path = join(dir, `w-${r}.ndjson`);
      runs.push(writeLog(path, WRITES, k, every));
      rmSync(path);
    }
    const best = Math.min(...runs);
    console.log(JSON.stringify({ bench: 'seal-write', case: label, records: WRITES, records_per_s: Math.round(WRITES / (best / 1000)), us_per_record: Math.round((best * 1000) / WRITES * 100) / 100, best_of: 3 }));
  }
  const path = join(dir, 'signed-1m.ndjson');
  writeLog(path, AUDIT_RECORDS - 2, key, 1000);
  const cli = join(ROOT, 'dist/daemon/cli.js');
  const plain = await measuredRun([cli, 'audit', '--json', path]);
  const signed = await measuredRun([cli, 'audit', '--json', '--pubkey', `${keyFile}.pub`, path]);
  console.log(JSON.stringify({ bench: 'seal-audit', records: AUDIT_RECORDS, log_mb: Math.round(statSync(path).size / 1e6), seals: Math.ceil(AUDIT_RECORDS / 1001), plain, pubkey: signed }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
