// What anyone who can write a log can do without the key: change records and recompute every
// hash after them, so that the chain alone says "intact".
import { hashOf } from '../../daemon/outputs/chain.js';

type Rec = Record<string, unknown> & { seq: number; prev: string; hash: string };

/**
 * `edit` may change a record (return it), drop it (return null) or leave it (return it as
 * is); then the chain is re-hashed and re-numbered from the first record touched on.
 */
export function forge(text: string, edit: (r: Rec) => Rec | null): string {
  const recs = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Rec);
  const out: Rec[] = [];
  let touched = false;
  for (const r of recs) {
    const before = JSON.stringify(r);
    const e = edit(structuredClone(r));
    if (e === null) {
      touched = true;
      continue;
    }
    if (JSON.stringify(e) !== before) touched = true;
    const prev = out[out.length - 1];
    if (touched) {
      if (prev) {
        e.seq = prev.seq + 1;
        e.prev = prev.hash;
      }
      e.hash = hashOf(e);
    }
    out.push(e);
  }
  return `${out.map((r) => JSON.stringify(r)).join('\n')}\n`;
}
