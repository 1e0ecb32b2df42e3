// The audit log's hash chain. Kept free of I/O so that the writer (audit-log.ts) and
// the verifier (audit/verify.ts) share one definition of what a hash covers.

import { createHash } from 'node:crypto';

/** `prev` of the first record of a log that starts a new chain */
export const GENESIS = '0'.repeat(64);

/** what every sealed record carries (CONTRACT.md "The audit log") */
export interface ChainRecord {
  seq: number;
  time: number;
  prev: string;
  hash: string;
  [field: string]: unknown;
}

/** the last sealed record: seq -1 and GENESIS when nothing was sealed yet */
export interface ChainHead {
  seq: number;
  hash: string;
}

const SURROGATE = /[\uD800-\uDFFF]/;
/** fields the chain assigns itself: a caller's own are ignored (see seal()) */
const CHAIN_KEYS = new Set(['seq', 'time', 'prev', 'hash']);
/** record keys recur on every record: each is quoted once */
const quoted = new Map<string, string>();
function keyJson(key: string): string {
  let q = quoted.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (quoted.size < 4096) quoted.set(key, q);
  }
  return q;
}
const LONE_SURROGATE = /\p{Surrogate}/gu;

// Mirrors JSON.stringify's rules (toJSON, dropped undefined/functions, non-finite → null)
// so that a record and the same record parsed back from its NDJSON line encode alike;
// only key order differs from JSON.stringify, and that is what makes it canonical. What
// JSON cannot carry becomes what a reader parses back: a bigint its decimal string, a lone
// surrogate U+FFFD (as on its way through UTF-8 to the file).
function encode(value: unknown): string | undefined {
  let v = value;
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof v) {
    case 'string':
      return JSON.stringify(SURROGATE.test(v) ? v.replace(LONE_SURROGATE, '\uFFFD') : v);
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return `"${v}"`;
    case 'object': {
      if (v === null) return 'null';
      if (Array.isArray(v)) {
        if (v.length === 0) return '[]';
        let out = `[${encode(v[0]) ?? 'null'}`;
        for (let i = 1; i < v.length; i++) out += `,${encode(v[i]) ?? 'null'}`;
        return `${out}]`;
      }
      const obj = v as Record<string, unknown>;
      let out = '';
      for (const key of sortedKeys(obj)) {
        const enc = encode(obj[key]);
        if (enc === undefined) continue;
        out = out === '' ? `${keyJson(key)}:${enc}` : `${out},${keyJson(key)}:${enc}`;
      }
      return `{${out}}`;
    }
    default:
      return undefined;
  }
}

/** an object's keys in code-unit order; most records are built in that order already */
function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) return keys.sort();
  }
  return keys;
}

/** JSON with object keys sorted at every depth and no whitespace */
export function canonical(value: unknown): string {
  return encode(value) ?? 'null';
}

/** sha256 (hex) over every field of the record except `hash` itself (so `prev` is covered) */
export function hashOf(record: Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = record;
  return createHash('sha256').update(canonical(rest)).digest('hex');
}

/** an escaped UTF-16 surrogate in a line: the one case where JSON.stringify and encode() may part */
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

/** every object below `v` has its keys in code-unit order (as the writer writes them) */
function sortedDeep(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (Array.isArray(v)) {
    for (const x of v) if (!sortedDeep(x)) return false;
    return true;
  }
  const keys = Object.keys(v);
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return false;
  for (const k of keys) if (!sortedDeep((v as Record<string, unknown>)[k])) return false;
  return true;
}

/**
 * hashOf for a record parsed back from its line (`text`), the same answer in about half the
 * time: for parsed JSON with every nested object's keys already in order and no escaped
 * surrogate, JSON.stringify of each top-level value is exactly what encode() makes, and it is
 * native. Anything else (a line not as the writer writes it) takes hashOf itself.
 */
export function hashOfParsed(record: Record<string, unknown>, text: string): string {
  if (!ESCAPED_SURROGATE.test(text)) {
    const keys = Object.keys(record).filter((k) => k !== 'hash').sort();
    let out = '';
    let ok = true;
    for (const k of keys) {
      const v = record[k];
      if (!sortedDeep(v)) {
        ok = false;
        break;
      }
      out = out === '' ? `${keyJson(k)}:${JSON.stringify(v)}` : `${out},${keyJson(k)}:${JSON.stringify(v)}`;
    }
    if (ok) return createHash('sha256').update(`{${out}}`).digest('hex');
  }
  return hashOf(record);
}

/**
 * One sealed record: its NDJSON line (the canonical form the hash covers, `seq` first and
 * `hash` last) and, parsed from that line only when someone asks, the record as a reader
 * gets it back. Most records are written and never read again in this process: parsing
 * each one cost more than encoding it.
 */
export class Sealed<R extends ChainRecord = ChainRecord> {
  #record: R | undefined;
  constructor(
    readonly seq: number,
    readonly hash: string,
    /** the line, with its newline */
    readonly line: string,
  ) {}

  /** plain data, detached from the fields it was sealed from */
  get record(): R {
    this.#record ??= JSON.parse(this.line) as R;
    return this.#record;
  }
}

export class Chain {
  #seq: number;
  #head: string;

  /** `start`: the last record of an existing chain, to continue after it */
  constructor(start?: ChainHead) {
    this.#seq = start?.seq ?? -1;
    this.#head = start?.hash ?? GENESIS;
  }

  get seq(): number {
    return this.#seq;
  }

  get head(): string {
    return this.#head;
  }

  /**
   * Seals `fields` into the next record and advances. `seq`, `prev` and `hash` in
   * `fields` are ignored: the chain alone assigns them, or a caller could fork it.
   */
  seal<F extends Record<string, unknown>>(fields: F): ChainRecord & Omit<F, 'seq' | 'prev' | 'hash'> {
    return this.sealLine(fields).record;
  }

  /**
   * Seals `fields`, encoded once: the line is the canonical form the hash covers, with
   * `hash` added last. (Throws on a cyclic object, before the chain advances.)
   */
  sealLine<F extends Record<string, unknown>>(fields: F): Sealed<ChainRecord & Omit<F, 'seq' | 'prev' | 'hash'>> {
    const seq = this.#seq + 1;
    // CONTRACT.md wants integer epoch ms; sensor times may be fractional (events.ts).
    const time = fields.time;
    const t = typeof time === 'number' && Number.isFinite(time) ? Math.floor(time) : Date.now();
    const keys = Object.keys(fields).filter((k) => !CHAIN_KEYS.has(k));
    keys.push('time', 'prev');
    keys.sort();
    // each top-level field encoded once, in canonical (sorted) order: the hash covers
    // {before seq, seq, after seq}; the line puts seq first (readers find it without a
    // parse), then the rest in the same order, and hash last
    let before = '';
    let after = '';
    for (const key of keys) {
      const enc = key === 'time' ? String(t) : key === 'prev' ? `"${this.#head}"` : encode(fields[key]);
      if (enc === undefined) continue;
      if (key < 'seq') before += `${keyJson(key)}:${enc},`;
      else after += `,${keyJson(key)}:${enc}`;
    }
    const seqPart = `"seq":${seq}`;
    const hash = createHash('sha256').update(`{${before}${seqPart}${after}}`).digest('hex');
    const line = `{${seqPart}${before === '' ? '' : `,${before.slice(0, -1)}`}${after},"hash":"${hash}"}\n`;
    this.#seq = seq;
    this.#head = hash;
    return new Sealed(seq, hash, line);
  }
}
