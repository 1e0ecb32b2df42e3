// Fingerprinting a 100 GiB weight set: sparse files (real random bytes at the start and
// over every block the sample plan reads, holes elsewhere — so each read hits data, as in
// dense weights), registered the way `--weights` does. Prints JSON.
// `--cold` (root) drops the page cache first, so the reads go to the disk.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeHashers, samplePlan } from '../daemon/sensors/weights/fingerprint.js';
import { WeightRegistry } from '../daemon/sensors/weights/registry.js';

const GIB = 1 << 30;
const FILES = 20; // 20 shards of 5 GiB, as a 100 GiB safetensors checkpoint is shipped
const SHARD = 5 * GIB;
const cold = process.argv.includes('--cold');
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-fp-'));
try {
  for (let i = 0; i < FILES; i++) {
    const fd = openSync(join(dir, `model-${String(i + 1).padStart(5, '0')}-of-${String(FILES).padStart(5, '0')}.safetensors`), 'w');
    const header = Buffer.from(JSON.stringify({ shard: i, w: { dtype: 'BF16', shape: [SHARD / 2], data_offsets: [0, SHARD] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeSync(fd, len, 0, 8, 0);
    writeSync(fd, header, 0, header.length, 8);
    writeSync(fd, randomBytes(4 << 20), 0, 4 << 20, 8 + header.length);
    ftruncateSync(fd, SHARD);
    for (const r of samplePlan(SHARD)) writeSync(fd, randomBytes(r.length), 0, r.length, Math.max(r.offset, 8 + header.length));
    closeSync(fd);
  }
  if (cold) {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '1');
  }
  const registry = new WeightRegistry();
  const t0 = performance.now();
  const res = await registry.registerPaths([dir]);
  const ms = Math.round(performance.now() - t0);
  const bytes = res.files.reduce((a, f) => a + f.fp.size, 0);
  console.log(JSON.stringify({ bench: 'fingerprint', total_gib: bytes / GIB, files: res.files.length, ms, cache: cold ? 'cold' : 'warm', per_file_ms: Math.round((ms / res.files.length) * 10) / 10 }));
} finally {
  rmSync(dir, { recursive: true, force: true });
  await closeHashers();
}
