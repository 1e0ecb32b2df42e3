// Fingerprinting a 100 GiB weight set: sparse files (real random bytes at the start and at
// scattered offsets, holes elsewhere), registered the way `--weights` does. Prints JSON.
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeHashers } from '../daemon/sensors/weights/fingerprint.js';
import { WeightRegistry } from '../daemon/sensors/weights/registry.js';

const GIB = 1 << 30;
const FILES = 20; // 20 shards of 5 GiB, as a 100 GiB safetensors checkpoint is shipped
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-fp-'));
try {
  for (let i = 0; i < FILES; i++) {
    const fd = openSync(join(dir, `model-${String(i + 1).padStart(5, '0')}-of-${FILES}.safetensors`), 'w');
    const header = Buffer.from(JSON.stringify({ shard: i, w: { dtype: 'BF16', shape: [5 * GIB], data_offsets: [0, 5 * GIB] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeSync(fd, len, 0, 8, 0);
    writeSync(fd, header, 0, header.length, 8);
    writeSync(fd, randomBytes(4 << 20), 0, 4 << 20, 8 + header.length);
    for (let k = 1; k < 8; k++) writeSync(fd, randomBytes(1 << 20), 0, 1 << 20, Math.floor((k * 5 * GIB) / 8));
    ftruncateSync(fd, 5 * GIB);
    closeSync(fd);
  }
  const registry = new WeightRegistry();
  const t0 = performance.now();
  const res = await registry.registerPaths([dir]);
  const ms = Math.round(performance.now() - t0);
  console.log(JSON.stringify({ bench: 'fingerprint', total_gib: (res.files.reduce((a, f) => a + f.fp.size, 0) / GIB), files: res.files.length, ms }));
} finally {
  rmSync(dir, { recursive: true, force: true });
  await closeHashers();
}
