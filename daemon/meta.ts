// Trial metadata (model, scaffold, task, seed…): KEY=VALUE pairs from `exec --meta` and
// `trial meta`, checked the same way wherever they come from.

const KEY = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_KEYS = 64;
const MAX_VALUE = 1024;

/** what is wrong with a metadata object, or null */
export function metaProblem(meta: unknown): string | null {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return 'meta is an object of KEY: VALUE strings';
  const pairs = Object.entries(meta as Record<string, unknown>);
  if (pairs.length === 0 || pairs.length > MAX_KEYS) return `meta: 1–${MAX_KEYS} keys`;
  for (const [k, v] of pairs) {
    if (!KEY.test(k)) return `meta: key "${k.slice(0, 80)}" is not 1–64 of A-Z a-z 0-9 . _ -`;
    if (typeof v !== 'string' || v.length > MAX_VALUE) return `meta: the value of ${k} is not a string of ${MAX_VALUE} characters at most`;
  }
  return null;
}

/** KEY=VALUE pairs → an object, or what is wrong with them */
export function parseMetaPairs(pairs: string[]): Record<string, string> | string {
  const meta: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) return `${p.slice(0, 80)} is not KEY=VALUE`;
    meta[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return metaProblem(meta) ?? meta;
}
