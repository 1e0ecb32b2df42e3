// `audit --pubkey`: which records of the intact chain a valid seal covers (outputs/seal.ts).
//
// A valid seal at seq S signs the hash of seq S-1, and the chain binds every record before it
// to that hash: everything up to S is then what the key's holder wrote. So coverage is the
// prefix up to the last valid seal, and what fails is said by the first record it leaves out:
// - a seal by this key that does not verify (a record before it was changed and re-chained:
//   the edit lies between the last valid seal and this one);
// - a seal that should be there and is not: a seal promises the next within `next_within`
//   records, and one follows every trial end and every daemon start and stop at once. Seals
//   removed and the chain re-hashed show up so;
// - no valid seal at all.
// Records after the last valid seal, fewer than its promise and with no milestone left
// unsealed before their end, are an unsealed tail: the daemon died, or the log was cut
// there. Said plainly, not an error: cutting a log short needs no key, and only a seal or
// head kept off the host (the websocket heartbeat) shows it.
import type { KeyObject } from 'node:crypto';
import { sealSignatureProblem } from '../outputs/seal.js';
import type { VerifiedRecord } from './verify.js';

export interface SealsResult {
  /** seal records in the intact chain, whatever their key */
  count: number;
  key_ids: string[];
  /** --pubkey was given */
  checked: boolean;
  key_id?: string;
  /** seals by the given key that verify */
  valid?: number;
  /** seals by other keys (not checked) */
  other_keys?: number;
  /** the last record a valid seal covers; null: none */
  covered_to?: number | null;
  /** the first record of the intact chain that no valid seal covers; null: none */
  first_uncovered?: number | null;
  /** records after the last valid seal, when that is all that is uncovered and allowed */
  unsealed_tail?: { from: number; to: number; records: number } | null;
  ok?: boolean;
  /** why not ok */
  problem?: string;
}

const KEY_IDS_CAP = 16;

/** a record the daemon seals right after (audit-log.ts milestone()) */
function milestone(rec: VerifiedRecord): string | null {
  if (rec.kind === 'trial' && rec.phase === 'end') return `end of trial ${String(rec.trial)}`;
  if (rec.kind === 'daemon' && (rec.phase === 'start' || rec.phase === 'stop')) return `daemon ${rec.phase}`;
  return null;
}

export class SealChecker {
  readonly #pub: { key: KeyObject; keyId: string } | null;
  #count = 0;
  readonly #keyIds = new Set<string>();
  #valid = 0;
  #other = 0;
  #firstSeq: number | null = null;
  #lastSeq: number | null = null;
  /** the last valid seal: its seq and promise */
  #last: { seq: number; nextWithin: number } | null = null;
  /** the first failure: the record from which coverage is lost, and why */
  #bad: { seq: number; why: string } | null = null;
  /** a milestone after the last valid seal (a seal must follow it) */
  #milestone: { seq: number; what: string } | null = null;

  constructor(pub: { key: KeyObject; keyId: string } | null) {
    this.#pub = pub;
  }

  push(rec: VerifiedRecord): void {
    this.#firstSeq ??= rec.seq;
    this.#lastSeq = rec.seq;
    if (rec.kind === 'seal') {
      this.#count++;
      if (typeof rec.key_id === 'string' && this.#keyIds.size < KEY_IDS_CAP) this.#keyIds.add(rec.key_id);
      if (this.#pub) this.#seal(rec, this.#pub);
      return;
    }
    if (!this.#pub || this.#bad) return;
    const from = this.#last ? this.#last.seq + 1 : (this.#firstSeq ?? rec.seq);
    if (this.#milestone) {
      this.#bad = { seq: from, why: `no seal follows the ${this.#milestone.what} at seq ${this.#milestone.seq} (one always does: seals were removed, or a daemon without this key wrote on)` };
      return;
    }
    if (this.#last && rec.seq - this.#last.seq > this.#last.nextWithin) {
      this.#bad = { seq: from, why: `the seal at seq ${this.#last.seq} promised the next within ${this.#last.nextWithin} records; seq ${rec.seq} came without one (seals were removed, or a daemon without this key wrote on)` };
      return;
    }
    const m = milestone(rec);
    if (m) this.#milestone = { seq: rec.seq, what: m };
  }

  #seal(rec: VerifiedRecord, pub: { key: KeyObject; keyId: string }): void {
    if (rec.key_id !== pub.keyId) {
      this.#other++;
      return;
    }
    const problem = rec.head_seq !== rec.seq - 1 ? `its head_seq ${String(rec.head_seq)} is not the record before it` : rec.head_hash !== rec.prev ? 'its head_hash is not the hash of the record before it' : sealSignatureProblem(rec, pub.key);
    if (problem) {
      // an edit before this seal, re-chained: it lies after the last seal that holds
      this.#bad ??= { seq: this.#last ? this.#last.seq + 1 : (this.#firstSeq ?? 0), why: `the seal at seq ${rec.seq} does not verify: ${problem} (a record after ${this.#last ? `seq ${this.#last.seq}` : 'the start'} and before seq ${rec.seq} was changed)` };
      return;
    }
    this.#valid++;
    if (this.#bad) return;
    this.#last = { seq: rec.seq, nextWithin: typeof rec.next_within === 'number' ? rec.next_within : 0 };
    this.#milestone = null;
  }

  result(): SealsResult {
    const out: SealsResult = { count: this.#count, key_ids: [...this.#keyIds], checked: this.#pub !== null };
    if (!this.#pub) return out;
    out.key_id = this.#pub.keyId;
    out.valid = this.#valid;
    out.other_keys = this.#other;
    out.covered_to = this.#last?.seq ?? null;
    const last = this.#lastSeq;
    const from = this.#bad?.seq ?? (this.#last ? this.#last.seq + 1 : this.#firstSeq);
    out.first_uncovered = last === null || from === null || from > last ? null : from;
    out.unsealed_tail = null;
    if (this.#bad) {
      out.ok = false;
      out.problem = this.#bad.why;
    } else if (last !== null && !this.#last) {
      out.ok = false;
      out.problem = this.#count === 0 ? 'the log carries no seal (it was not signed, or its seals were removed)' : `no seal by key ${this.#pub.keyId} verifies (${this.#count} seal${this.#count === 1 ? '' : 's'} by ${[...this.#keyIds].join(', ')})`;
    } else {
      out.ok = true;
      if (out.first_uncovered !== null && last !== null) out.unsealed_tail = { from: out.first_uncovered, to: last, records: last - out.first_uncovered + 1 };
    }
    return out;
  }
}

/** one line for the text report */
export function sealsLine(s: SealsResult): string {
  if (!s.checked) {
    return s.count === 0 ? 'seals: none (the log is unsigned)' : `seals: ${s.count} (key ${s.key_ids.join(', ')}), not checked: give --pubkey FILE.pub to verify them`;
  }
  if (!s.ok) return `seals FAIL (key ${s.key_id}): ${s.problem}; first record not covered by a valid seal: seq ${s.first_uncovered ?? '?'}`;
  const tail = s.unsealed_tail ? `; unsealed tail: seq ${s.unsealed_tail.from}–${s.unsealed_tail.to} (${s.unsealed_tail.records} record${s.unsealed_tail.records === 1 ? '' : 's'} after the last seal: the daemon died or the log was cut there; compare with a seal or head kept off the host)` : '';
  return `seals verified (key ${s.key_id}): ${s.valid} valid, every record up to seq ${s.covered_to} covered${tail}`;
}
