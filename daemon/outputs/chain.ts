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
        let out = '[';
        for (let i = 0; i < v.length; i++) out += `${i > 0 ? ',' : ''}${encode(v[i]) ?? 'null'}`;
        return `${out}]`;
      }
      const obj = v as Record<string, unknown>;
      let out = '';
      for (const key of Object.keys(obj).sort()) {
        const enc = encode(obj[key]);
        if (enc !== undefined) out += `${out === '' ? '' : ','}${JSON.stringify(key)}:${enc}`;
      }
      return `{${out}}`;
    }
    default:
      return undefined;
  }
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
   * Seals `fields` and returns the record with its NDJSON line, encoded once: the line is
   * the canonical form the hash covers, with `hash` added last. (Throws on a cyclic
   * object, before the chain advances.)
   */
  sealLine<F extends Record<string, unknown>>(fields: F): { record: ChainRecord & Omit<F, 'seq' | 'prev' | 'hash'>; line: string } {
    const seq = this.#seq + 1;
    // CONTRACT.md wants integer epoch ms; sensor times may be fractional (events.ts).
    const time = fields.time;
    const t = typeof time === 'number' && Number.isFinite(time) ? Math.floor(time) : Date.now();
    const keys = Object.keys(fields).filter((k) => !CHAIN_KEYS.has(k));
    keys.push('seq', 'time', 'prev');
    keys.sort();
    // each top-level field encoded once, in canonical (sorted) order for the hash; the line
    // puts seq first (readers find it without a parse) and hash last
    let body = '';
    let others = '';
    for (const key of keys) {
      const enc = key === 'seq' ? String(seq) : key === 'time' ? String(t) : key === 'prev' ? `"${this.#head}"` : encode(fields[key]);
      if (enc === undefined) continue;
      const part = `${keyJson(key)}:${enc}`;
      body = body === '' ? part : `${body},${part}`;
      if (key !== 'seq') others += `,${part}`;
    }
    const hash = createHash('sha256').update(`{${body}}`).digest('hex');
    this.#seq = seq;
    this.#head = hash;
    const line = `{"seq":${seq}${others},"hash":"${hash}"}`;
    // the record as a reader gets it back: plain data, detached from the caller's objects
    const record = JSON.parse(line) as ChainRecord & Omit<F, 'seq' | 'prev' | 'hash'>;
    return { record, line: `${line}\n` };
  }
}
