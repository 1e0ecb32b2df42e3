// `redline audit` over logs of 250 000, 500 000 and 1 000 000 records (100 trials each,
// ~10 % alerts, freezes, recorded events): wall time and peak RSS of the audit process,
// which should stay flat as the log grows. Prints JSON.
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chain } from '../daemon/outputs/chain.js';
import { measuredRun } from './procstat.js';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const CATEGORIES = ['weights.read', 'weights.copy', 'replica.spawn', 'process.kill', 'process.detach', 'network.listen'];

async function makeLog(path: string, records: number): Promise<void> {
  const out = createWriteStream(path);
  const chain = new Chain();
  const trials = 100;
  const per = Math.floor(records / trials);
  let time = 1_790_000_000_000;
  const write = async (fields: Record<string, unknown>) => {
    if (!out.write(`${JSON.stringify(chain.seal({ time: time++, ...fields }))}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  };
  for (let t = 0; t < trials; t++) {
    const trial = `trial-${t}`;
    await write({ kind: 'trial', phase: 'start', trial });
    for (let i = 0; i < per - 3; i++) {
      if (i % 10 === 5) {
        const category = CATEGORIES[(i / 10) % CATEGORIES.length | 0] as string;
        await write({ kind: 'alert', trial, rule: 'r', category, severity: i % 20 === 5 ? 'high' : 'medium', summary: `something ${i}`, pid: 1000 + (i % 50), event: { type: 'signal', sig: 18 }, proc: { pid: 1000, comm: 'sh' } });
      } else {
        await write({ kind: 'event', type: 'sensor', trial, event: { type: 'open', pid: 1000 + (i % 50), time, filename: `/tmp/f${i}`, fd: 3, flags: 0, dfd: -100, write: false }, proc: { pid: 1000, comm: 'python3', args: ['python3', 'agent.py'] } });
      }
    }
    await write({ kind: 'action', trial, action: 'freeze', ok: true, latency_ms: 2.1, cause: 'r' });
    await write({ kind: 'trial', phase: 'end', trial, tripped: true, exit_code: 3 });
  }
  await new Promise<void>((r) => out.end(r));
}

try {
  for (const records of (process.env.RECORDS ?? "250000,500000,1000000,2000000").split(",").map(Number)) {
    const path = join(dir, `log-${records}.ndjson`);
    await makeLog(path, records);
    const m = await measuredRun([join(ROOT, 'dist/daemon/cli.js'), 'audit', '--json', path]);
    console.log(JSON.stringify({ bench: 'audit', records, log_mb: Math.round(statSync(path).size / 1e6), ...m }));
    rmSync(path);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
