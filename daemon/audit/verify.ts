// Checks the hash chain of one log, or of several files given oldest first (rotation).
// It reports the first position where anything fails as the seq that should have been
// there, so "edited seq k", "deleted seq k", "k and k+1 swapped" and "garbage where k
// was" all name k.
//
// What the chain cannot show by itself: records cut off the end of the log, or cut off
// its start when what remains still reads as a continuation (see below). The head hash
// printed by `redline audit` is what to compare with the one streamed off the host.

import { type ChainHead, type ChainRecord, GENESIS, hashOfParsed } from '../outputs/chain.js';
import type { LogLine } from './read.js';

export const RECORD_KINDS = ['daemon', 'trial', 'event', 'alert', 'action', 'snapshot', 'seal'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

export interface VerifiedRecord extends ChainRecord {
  kind: RecordKind;
}

export interface VerifyResult {
  ok: boolean;
  /** lines that hold a JSON object, verified or not */
  records: number;
  first_bad_seq: number | null;
  reason?: string;
  /** the last record of the intact prefix */
  head?: ChainHead;
  /** seq of the first record; above 0 when the log continues an earlier one */
  first_seq?: number;
  /** where the first failure is */
  bad_at?: { file: string; line: number };
}

const HEX64 = /^[0-9a-f]{64}$/;
const KINDS: ReadonlySet<string> = new Set(RECORD_KINDS);

/** why `value` lacks CONTRACT.md's record fields, or null when it has them */
function shapeProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  if (typeof r.seq !== 'number' || !Number.isInteger(r.seq) || r.seq < 0) return 'seq is not a non-negative integer';
  if (typeof r.time !== 'number' || !Number.isInteger(r.time)) return 'time is not an integer';
  if (typeof r.kind !== 'string' || !KINDS.has(r.kind)) return `kind ${JSON.stringify(r.kind)} is not one of ${RECORD_KINDS.join(', ')}`;
  if (typeof r.prev !== 'string' || !HEX64.test(r.prev)) return 'prev is not a sha256 hex string';
  if (typeof r.hash !== 'string' || !HEX64.test(r.hash)) return 'hash is not a sha256 hex string';
  return null;
}

/** streaming form, so `redline audit` never holds a whole log */
export class ChainVerifier {
  #records = 0;
  #last: ChainHead | null = null;
  #firstSeq: number | undefined;
  #bad: { seq: number | null; reason: string; file: string; line: number } | null = null;

  /** returns the record when it extends the intact prefix, null otherwise */
  push(line: LogLine): VerifiedRecord | null {
    const obj = line.parsed && line.value !== null && typeof line.value === 'object' && !Array.isArray(line.value);
    if (obj) this.#records++;
    if (this.#bad) {
      // A failure on the very first line has no seq of its own: the next record says it.
      if (this.#bad.seq === null && obj) {
        const seq = (line.value as { seq?: unknown }).seq;
        if (typeof seq === 'number' && Number.isInteger(seq)) this.#bad.seq = Math.max(0, seq - 1);
      }
      return null;
    }
    const where = `line ${line.line} of ${line.file}`;
    const problem = line.parsed ? shapeProblem(line.value) : `not JSON (${line.error})`;
    if (problem || !line.parsed) {
      this.#fail(this.#last ? this.#last.seq + 1 : null, `${where}: ${problem}`, line);
      return null;
    }
    const rec = line.value as VerifiedRecord;
    const linkProblem = this.#linkProblem(rec);
    if (linkProblem) {
      this.#fail(linkProblem.seq, `${where}: ${linkProblem.reason}`, line);
      return null;
    }
    if (hashOfParsed(rec, line.text) !== rec.hash) {
      this.#fail(rec.seq, `${where}: hash does not match the record's contents (seq ${rec.seq} was edited)`, line);
      return null;
    }
    this.#firstSeq ??= rec.seq;
    this.#last = { seq: rec.seq, hash: rec.hash };
    return rec;
  }

  #linkProblem(rec: VerifiedRecord): { seq: number; reason: string } | null {
    const last = this.#last;
    if (!last) {
      if (rec.prev === GENESIS) {
        return rec.seq === 0 ? null : { seq: 0, reason: `the chain starts (prev is genesis) at seq ${rec.seq}, not 0` };
      }
      // Rotated files continue the chain, so the first record of the first file given
      // may carry a non-genesis prev; its seq above 0 marks it as such a continuation.
      // A seq-0 record, though, can only follow genesis.
      return rec.seq > 0 ? null : { seq: 0, reason: 'seq 0 does not follow genesis (prev is not 64 zeros)' };
    }
    const expected = last.seq + 1;
    if (rec.seq !== expected) {
      return { seq: expected, reason: `expected seq ${expected}, found seq ${rec.seq} (missing or out of order)` };
    }
    if (rec.prev !== last.hash) {
      return { seq: expected, reason: `prev of seq ${rec.seq} is not the hash of seq ${last.seq}` };
    }
    return null;
  }

  /** the seq where the chain broke (null: intact so far) */
  brokenAt(): number | null {
    return this.#bad ? (this.#bad.seq ?? 0) : null;
  }

  #fail(seq: number | null, reason: string, line: LogLine): void {
    this.#bad = { seq, reason, file: line.file, line: line.line };
  }

  result(): VerifyResult {
    const out: VerifyResult = { ok: this.#bad === null, records: this.#records, first_bad_seq: null };
    if (this.#bad) {
      out.first_bad_seq = this.#bad.seq ?? 0;
      out.reason = this.#bad.reason;
      out.bad_at = { file: this.#bad.file, line: this.#bad.line };
    }
    if (this.#last) out.head = { ...this.#last };
    if (this.#firstSeq !== undefined) out.first_seq = this.#firstSeq;
    return out;
  }
}

export function verifyChain(lines: Iterable<LogLine>): VerifyResult {
  const v = new ChainVerifier();
  for (const line of lines) v.push(line);
  return v.result();
}
