// Where a log's chain left off: its last complete record's seq and hash, read back from the
// end of the file (a torn last line, or one that is not a record, is passed over).
import fs from 'node:fs';
import type { ChainHead } from './chain.js';

const HEX64 = /^[0-9a-f]{64}$/;
const TAIL_CHUNK = 64 * 1024;

/** the last complete, parseable record of an open file, scanning back from its end */
export function lastRecord(fd: number, size: number): ChainHead | null {
  let pos = size;
  let carry = Buffer.alloc(0);
  while (pos > 0) {
    const n = Math.min(TAIL_CHUNK, pos);
    pos -= n;
    const chunk = Buffer.alloc(n);
    fs.readSync(fd, chunk, 0, n, pos);
    const buf = Buffer.concat([chunk, carry]);
    const lines = buf.toString('utf8').split('\n');
    // Before the start of the file, the first piece may be the tail of a longer line.
    const firstComplete = pos === 0 ? 0 : 1;
    for (let i = lines.length - 1; i >= firstComplete; i--) {
      const head = parseHead(lines[i] ?? '');
      if (head) return head;
    }
    const nl = buf.indexOf(0x0a);
    carry = nl === -1 ? buf : buf.subarray(0, nl);
  }
  return null;
}

function parseHead(line: string): ChainHead | null {
  if (line.trim() === '') return null;
  try {
    const r: unknown = JSON.parse(line);
    if (r === null || typeof r !== 'object') return null;
    const { seq, hash } = r as { seq?: unknown; hash?: unknown };
    if (typeof seq === 'number' && Number.isInteger(seq) && seq >= 0 && typeof hash === 'string' && HEX64.test(hash)) {
      return { seq, hash };
    }
  } catch {
    // not a record: keep looking further back
  }
  return null;
}
