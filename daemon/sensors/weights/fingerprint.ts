// A weight file's fingerprint: size, identity, format, and hashes of a few sampled blocks,
// so that a full copy is recognised from a few reads whatever its size, and a copy in
// progress from its first MiB. Every read and hash runs on a small worker pool, so that
// weights being fingerprinted never stall the event loop a freeze depends on.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { detectFormat, FORMAT_BYTES, type WeightFormat } from './format.js';

export const HEAD_BYTES = 1 << 20;
export const HEAD64_BYTES = 64 << 10;
export const HEAD4_BYTES = 4 << 10;
const SAMPLE_BYTES = 64 << 10;
const SAMPLES = 16;

export interface Range {
  offset: number;
  length: number;
}

export interface Sample extends Range {
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
  /** the first 64 bytes, hex: the archive scan compares these before hashing anything */
  lead: string;
  samples: Sample[];
}

/** what a worker saw of the file on the fd it read through */
export interface HashResult {
  size: number;
  dev: number;
  ino: number;
  /** one per range; null where the file is too short for it */
  hashes: (string | null)[];
}

export interface ScanTarget {
  /** the first 4 bytes as a u32 (LE): the per-step lookup key */
  key: number;
  lead: Uint8Array;
  len4: number;
  head4: string;
  len64: number;
  head64: string;
}

export interface ScanHit {
  offset: number;
  head64: string;
}

/**
 * The sample offsets depend on the size alone, so a candidate of the same size is read at
 * the same places. Blocks are 64 KiB-aligned, from the first to the one holding the last
 * byte: a preallocated copy (rsync --preallocate, truncate then write) that has not
 * written its end yet does not pass for complete.
 */
export function samplePlan(size: number): Range[] {
  const out: Range[] = [];
  const seen = new Set<number>();
  const last = Math.max(0, size - 1);
  for (let i = 0; i < SAMPLES; i++) {
    const offset = Math.floor(Math.floor((last * i) / (SAMPLES - 1)) / SAMPLE_BYTES) * SAMPLE_BYTES;
    if (seen.has(offset)) continue;
    seen.add(offset);
    out.push({ offset, length: Math.min(SAMPLE_BYTES, size - offset) });
  }
  return out.filter((r) => r.length > 0);
}

// the workers' code (CommonJS, no loader): beside this file in the sources; from dist/, in the sources
const WORKER = ((): URL => {
  const here = new URL('./hash-worker.cjs', import.meta.url);
  return existsSync(here) ? here : new URL('../../../../daemon/sensors/weights/hash-worker.cjs', import.meta.url);
})();

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

// Two workers at most: a long archive scan for one candidate does not hold up the head
// check of another, and the daemon never takes more than two cores for hashing.
const POOL_SIZE = Math.max(1, Math.min(2, availableParallelism()));
const slots: Slot[] = [];
let nextId = 0;

function fail(slot: Slot, err: Error): void {
  const i = slots.indexOf(slot);
  if (i >= 0) slots.splice(i, 1);
  for (const p of slot.pending.values()) p.reject(err);
  slot.pending.clear();
}

function start(): Slot {
  // no inherited node flags: the worker is plain CommonJS (a parent's --input-type=module
  // would break it) and needs no loader (tsx would only slow its start)
  const slot: Slot = { worker: new Worker(WORKER, { execArgv: [] }), pending: new Map() };
  slot.worker.on('message', (m: { id: number; ok: boolean; result?: unknown; code?: string; message?: string }) => {
    const p = slot.pending.get(m.id);
    if (!p) return;
    slot.pending.delete(m.id);
    // held only while a request is out: an idle pool never keeps the process alive
    if (slot.pending.size === 0) slot.worker.unref();
    if (m.ok) p.resolve(m.result);
    else p.reject(Object.assign(new Error(m.message ?? 'hash worker error'), { code: m.code }));
  });
  slot.worker.on('error', (err) => fail(slot, err));
  slot.worker.on('exit', () => fail(slot, new Error('hash worker exited')));
  // after the listener: adding a 'message' listener refs the worker again
  slot.worker.unref();
  slots.push(slot);
  return slot;
}

/** the idle worker, a new one while the pool is not full, else the least busy */
function pick(): Slot {
  const idle = slots.find((s) => s.pending.size === 0);
  if (idle) return idle;
  if (slots.length < POOL_SIZE) return start();
  return slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
}

function call<T>(op: 'hash' | 'scan', path: string, args: unknown): Promise<T> {
  const slot = pick();
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    if (slot.pending.size === 0) slot.worker.ref();
    slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    slot.worker.postMessage({ id, op, path, args });
  });
}

/** sha256 of each range, read through one fd, with what fstat said of that fd */
export async function hashRanges(path: string, ranges: readonly Range[]): Promise<HashResult> {
  const r = await call<HashResult>('hash', path, { ranges, lead: 0 });
  return { size: r.size, dev: r.dev, ino: r.ino, hashes: r.hashes };
}

/** sha256 of [offset, offset + length); null when the file is shorter than that */
export async function hashRange(path: string, offset: number, length: number): Promise<string | null> {
  return (await hashRanges(path, [{ offset, length }])).hashes[0] ?? null;
}

/** sha256 of [0, min(size, 1 MiB)), the hash a registered file's `head` is compared with */
export async function hashHead(path: string): Promise<string> {
  const { size } = await hashRanges(path, []);
  const h = await hashRange(path, 0, Math.min(size, HEAD_BYTES));
  if (h === null) throw Object.assign(new Error(`${path}: shrank while it was read`), { code: 'ECHANGED' });
  return h;
}

/** where, at `step` alignment below `limit`, the file holds the first 64 KiB of a target */
export function scanFor(path: string, scan: { limit: number; step: number; targets: readonly ScanTarget[] }): Promise<ScanHit[]> {
  return call<ScanHit[]>('scan', path, scan);
}

export async function fingerprint(path: string): Promise<Fingerprint> {
  // the plan depends on the size, so: size and lead first, then the hashes; a file that
  // changes in between (replaced, still growing) is read again
  for (let attempt = 0; attempt < 3; attempt++) {
    const first = await call<HashResult & { lead: Uint8Array }>('hash', path, { ranges: [], lead: FORMAT_BYTES });
    const size = first.size;
    const plan = samplePlan(size);
    const fixed: Range[] = [HEAD_BYTES, HEAD64_BYTES, HEAD4_BYTES].map((n) => ({ offset: 0, length: Math.min(size, n) }));
    const r = await hashRanges(path, [...fixed, ...plan]);
    const [head, head64, head4, ...samples] = r.hashes;
    if (r.dev !== first.dev || r.ino !== first.ino || r.size !== size || !head || !head64 || !head4 || samples.some((h) => !h)) continue;
    return {
      size,
      dev: r.dev,
      ino: r.ino,
      format: detectFormat(first.lead, size).format,
      head,
      head64,
      head4,
      lead: Buffer.from(first.lead).toString('hex'),
      samples: plan.map((p, i) => ({ ...p, hash: samples[i] ?? '' })),
    };
  }
  throw Object.assign(new Error(`${path}: changed while it was read`), { code: 'ECHANGED' });
}

/** stops the pool; requests still out are rejected. A later call starts it again. */
export async function closeHashers(): Promise<void> {
  const all = slots.splice(0);
  for (const s of all) {
    for (const p of s.pending.values()) p.reject(new Error('hash workers closed'));
    s.pending.clear();
  }
  await Promise.all(all.map((s) => s.worker.terminate()));
}
