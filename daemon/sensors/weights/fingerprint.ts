// A weight file's fingerprint: size, identity, format, and hashes of a few sampled blocks,
// so that a full copy is recognised from a few reads whatever its size, and a copy in
// progress from its first MiB.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { detectFormat, type WeightFormat } from './format.js';
import { closeHashers, hashRanges, type Range } from './hasher.js';

export { closeHashers };

export const HEAD_BYTES = 1 << 20;
export const HEAD64_BYTES = 64 << 10;
export const HEAD4_BYTES = 4 << 10;
const SAMPLE_BYTES = 64 << 10;
const SAMPLES = 16;

export interface Sample {
  offset: number;
  length: number;
  hash: string;
}

export interface Fingerprint {
  size: number;
  dev: number;
  ino: number;
  format: WeightFormat;
  /** sha256 of bytes [0, min(size, 1 MiB)) — a copy in progress is known by it */
  head: string;
  /** sha256 of the first 64 KiB and 4 KiB — to find the weights inside an archive */
  head64: string;
  head4: string;
  samples: Sample[];
}

/** the sample offsets depend on the size alone, so a candidate of the same size is read at the same places */
export function samplePlan(size: number): Range[] {
  const out: Range[] = [];
  const seen = new Set<number>();
  const last = Math.max(0, size - SAMPLE_BYTES);
  for (let i = 0; i < SAMPLES; i++) {
    const offset = Math.floor((last * i) / (SAMPLES - 1) / SAMPLE_BYTES) * SAMPLE_BYTES;
    if (seen.has(offset)) continue;
    seen.add(offset);
    out.push({ offset, length: Math.min(SAMPLE_BYTES, size - offset) });
  }
  return out.filter((r) => r.length > 0);
}

function readHead(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(64);
    const n = readSync(fd, b, 0, 64, 0);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export async function fingerprint(path: string): Promise<Fingerprint> {
  const st = statSync(path);
  const size = st.size;
  const plan = samplePlan(size);
  const fixed: Range[] = [
    { offset: 0, length: Math.min(size, HEAD_BYTES) },
    { offset: 0, length: Math.min(size, HEAD64_BYTES) },
    { offset: 0, length: Math.min(size, HEAD4_BYTES) },
  ];
  const hashes = await hashRanges(path, [...fixed, ...plan]);
  const [head, head64, head4] = hashes;
  if (!head || !head64 || !head4) throw new Error(`${path}: changed while it was read`);
  return {
    size,
    dev: st.dev,
    ino: st.ino,
    format: detectFormat(readHead(path)).format,
    head,
    head64,
    head4,
    samples: plan.map((r, i) => ({ ...r, hash: hashes[i + 3] ?? '' })),
  };
}
