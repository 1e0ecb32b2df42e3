// sha256 of file ranges, on a worker thread so that reading and hashing weights never
// stalls the event loop the freeze depends on. One lazily started, unref'd worker.
import { Worker } from 'node:worker_threads';

export interface Range {
  offset: number;
  length: number;
}

export interface ScanRequest {
  /** scan offsets 0, step, 2·step … below `limit` */
  limit: number;
  step: number;
  /** hash this many bytes at each offset and look the hash up in `targets` */
  probe: number;
  targets: string[];
}

// plain JS (eval'd) so it runs the same from the TypeScript sources and the compiled build
const WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const sha = (b) => createHash('sha256').update(b).digest('hex');
function readAt(fd, offset, length) {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}
parentPort.on('message', ({ id, op, path, ranges, scan }) => {
  let fd = -1;
  try {
    fd = fs.openSync(path, 'r');
    if (op === 'hash') {
      const out = ranges.map((r) => { const b = readAt(fd, r.offset, r.length); return b.length === r.length ? sha(b) : null; });
      parentPort.postMessage({ id, ok: true, result: out });
    } else {
      const targets = new Set(scan.targets);
      const block = readAt(fd, 0, scan.limit + scan.probe);
      const hits = [];
      for (let off = 0; off + scan.probe <= block.length && off < scan.limit; off += scan.step) {
        const h = sha(block.subarray(off, off + scan.probe));
        if (targets.has(h)) hits.push({ offset: off, hash: h });
      }
      parentPort.postMessage({ id, ok: true, result: hits });
    }
  } catch (err) {
    parentPort.postMessage({ id, ok: false, error: String(err && err.code || err) });
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
});
`;

let worker: Worker | null = null;
/** every worker started, so that closing can never miss one */
const all = new Set<Worker>();
let nextId = 0;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

function ensure(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER, { eval: true });
  all.add(w);
  w.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    const p = waiting.get(m.id);
    if (!p) return;
    waiting.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(m.error));
  });
  w.on('error', (err) => {
    for (const p of waiting.values()) p.reject(err);
    waiting.clear();
    if (worker === w) worker = null;
  });
  w.on('exit', () => {
    all.delete(w);
    if (worker === w) worker = null;
  });
  // after the listeners: attaching a 'message' listener may ref the worker again
  w.unref();
  worker = w;
  return w;
}

function call<T>(msg: Record<string, unknown>): Promise<T> {
  const w = ensure();
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    w.postMessage({ id, ...msg });
  });
}

/** hashes of each range; null for a range the file is too short for */
export function hashRanges(path: string, ranges: Range[]): Promise<(string | null)[]> {
  return call({ op: 'hash', path, ranges });
}

export function scanFor(path: string, scan: ScanRequest): Promise<{ offset: number; hash: string }[]> {
  return call({ op: 'scan', path, scan });
}

export async function closeHashers(): Promise<void> {
  worker = null;
  const workers = [...all];
  all.clear();
  await Promise.all(workers.map((w) => w.terminate()));
}
