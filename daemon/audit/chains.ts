// Sorts audit log files into chains. Each `redline exec` trial writes a log of its own, which
// starts its own chain (seq 0 after genesis); a rotated log (SIGUSR2) goes on in a new file
// whose first record's `prev` is the hash of the last record of the file before (and says so
// in `continues`). So a file whose first record follows genesis heads a chain, and a file whose
// first record's `prev` is another file's last hash is joined after it, whatever the order of
// the arguments. Only each file's first and last lines are read here.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { GENESIS } from '../outputs/chain.js';
import { UnreadableLogError } from './read.js';

interface Link {
  seq: number;
  time: number;
  prev: string;
  hash: string;
}

export interface FileEnds {
  file: string;
  /** the first and last lines that hold a record with seq, prev and hash (null: none) */
  first: Link | null;
  last: Link | null;
}

const CHUNK = 64 * 1024;
/** a record line longer than this at either end is not looked for further (the file is then a chain of its own) */
const MAX_LINE = 8 * 1024 * 1024;

function link(text: string): Link | null {
  try {
    const v = JSON.parse(text) as { seq?: unknown; time?: unknown; prev?: unknown; hash?: unknown };
    if (typeof v.seq === 'number' && typeof v.prev === 'string' && typeof v.hash === 'string') return { seq: v.seq, time: typeof v.time === 'number' ? v.time : 0, prev: v.prev, hash: v.hash };
  } catch {
    // not a record: the verifier says where
  }
  return null;
}

function readAt(fd: number, pos: number, len: number): string {
  const buf = Buffer.alloc(len);
  const n = readSync(fd, buf, 0, len, pos);
  return buf.toString('utf8', 0, n);
}

/** the first non-blank line's record */
function firstOf(fd: number, size: number): Link | null {
  let text = '';
  for (let pos = 0; pos < size && pos < MAX_LINE; pos += CHUNK) {
    text += readAt(fd, pos, CHUNK);
    const lines = text.split('\n');
    for (let i = 0; i < lines.length - 1; i++) if ((lines[i] as string).trim() !== '') return link(lines[i] as string);
    text = lines[lines.length - 1] as string;
  }
  return text.trim() !== '' ? link(text) : null;
}

/** the last line that parses as a record (a torn last line is passed over) */
function lastOf(fd: number, size: number): Link | null {
  let tail = '';
  let pos = size;
  while (pos > 0 && size - pos < MAX_LINE) {
    const from = Math.max(0, pos - CHUNK);
    tail = readAt(fd, from, pos - from) + tail;
    pos = from;
    const lines = tail.split('\n');
    // the first piece may be a partial line unless the read reached the file's start
    for (let i = lines.length - 1; i >= (pos === 0 ? 0 : 1); i--) {
      const l = lines[i] as string;
      if (l.trim() === '') continue;
      const r = link(l);
      if (r) return r;
    }
  }
  return null;
}

export function fileEnds(file: string): FileEnds {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new UnreadableLogError(file, e);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new UnreadableLogError(file, Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
    return { file, first: firstOf(fd, st.size), last: lastOf(fd, st.size) };
  } catch (e) {
    throw e instanceof UnreadableLogError ? e : new UnreadableLogError(file, e);
  } finally {
    closeSync(fd);
  }
}

/**
 * The files as chains, each its files oldest first. A chain's head is a file that follows
 * genesis, or one whose predecessor is not among the files (it continues a log not given).
 * Two files that both continue the same file (a segment copied) do not make one chain: the
 * first given is joined, the other stands alone (its trials are then found twice, and said so).
 * Chains come oldest first (by their first record's time, then file name): the same files in
 * any order give the same report.
 */
export function sortChains(given: readonly FileEnds[]): string[][] {
  const at = (e: FileEnds) => e.first?.time ?? Number.MAX_SAFE_INTEGER;
  const ends = [...given].sort((a, b) => at(a) - at(b) || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const byLastHash = new Map<string, FileEnds>();
  for (const e of ends) if (e.last && !byLastHash.has(e.last.hash)) byLastHash.set(e.last.hash, e);
  const next = new Map<FileEnds, FileEnds>();
  const joined = new Set<FileEnds>();
  for (const e of ends) {
    if (!e.first || e.first.prev === GENESIS) continue;
    const before = byLastHash.get(e.first.prev);
    if (!before || before === e || next.has(before)) continue;
    next.set(before, e);
    joined.add(e);
  }
  const chains: string[][] = [];
  const placed = new Set<FileEnds>();
  const follow = (head: FileEnds) => {
    const files: string[] = [];
    for (let f: FileEnds | undefined = head; f && !placed.has(f); f = next.get(f)) {
      placed.add(f);
      files.push(f.file);
    }
    chains.push(files);
  };
  for (const e of ends) if (!joined.has(e)) follow(e);
  // a loop of continuations (only a forged log makes one): each left file on its own
  for (const e of ends) if (!placed.has(e)) follow(e);
  return chains;
}
