// The hash workers of fingerprint.ts: plain CommonJS, loaded as it is from the sources whether
// the daemon runs from them or from dist/ (no loader, no build step: it starts fast).
// One fd per request, positional reads, fstat on that same fd: what is hashed and the
// size/inode reported are of one file even if the name is renamed or replaced meanwhile.
// O_NONBLOCK: a name swapped for a FIFO would otherwise block the open, and the worker.
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const sha = (b) => createHash('sha256').update(b).digest('hex');
let scratch = Buffer.alloc(0);
function buffer(n) {
  if (scratch.length < n) scratch = Buffer.allocUnsafe(n);
  return scratch.subarray(0, n);
}
function readAt(fd, buf, offset) {
  let got = 0;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
function hash(fd, st, { ranges, lead }) {
  const hashes = ranges.map((r) => { const b = buffer(r.length); return readAt(fd, b, r.offset) === r.length ? sha(b) : null; });
  let leadBytes = null;
  if (lead > 0) { const b = Buffer.alloc(lead); leadBytes = b.subarray(0, readAt(fd, b, 0)); }
  return { size: st.size, dev: st.dev, ino: st.ino, hashes, lead: leadBytes };
}
// a u32 lookup at each step, then the lead bytes, then 4 KiB, then 64 KiB: almost every
// step costs one Map lookup, and only the weights' own bytes ever reach the hashes. Read a
// MiB at a time into the reused buffer (fresh memory costs a page fault per 4 KiB), and
// stop after the first MiB that holds a hit.
const CHUNK = 1 << 20;
function scan(fd, { limit, step, targets }) {
  const byKey = new Map();
  let longest = 0;
  for (const t of targets) {
    const list = byKey.get(t.key);
    if (list) list.push(t); else byKey.set(t.key, [t]);
    longest = Math.max(longest, t.len64);
  }
  const b = buffer(CHUNK + longest);
  const hits = [];
  for (let base = 0; base < limit; base += CHUNK) {
    const n = readAt(fd, b, base);
    const end = Math.min(CHUNK, limit - base);
    for (let at = 0; at < end && at + 4 <= n; at += step) {
      const list = byKey.get(b.readUInt32LE(at));
      if (!list) continue;
      for (const t of list) {
        if (at + t.len64 > n || b.compare(t.lead, 0, t.lead.length, at, at + t.lead.length) !== 0) continue;
        if (sha(b.subarray(at, at + t.len4)) !== t.head4 || sha(b.subarray(at, at + t.len64)) !== t.head64) continue;
        hits.push({ offset: base + at, head64: t.head64 });
      }
    }
    if (hits.length > 0 || n < b.length) break;
  }
  return hits;
}
parentPort.on('message', ({ id, op, path, args }) => {
  let fd = -1;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error(path + ': not a regular file'), { code: 'ENOTREG' });
    parentPort.postMessage({ id, ok: true, result: op === 'scan' ? scan(fd, args) : hash(fd, st, args) });
  } catch (err) {
    parentPort.postMessage({ id, ok: false, code: err && err.code, message: String(err && err.message || err) });
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
});
