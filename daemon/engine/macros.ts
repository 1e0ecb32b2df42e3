// Macro expansion over CEL source, token-aware: string literals and member names
// (`x.name`) are never touched.

export interface Scan {
  /** identifiers outside strings that are not member accesses, with their offsets */
  idents: { name: string; at: number }[];
}

export function scanIdentifiers(src: string): Scan {
  const idents: { name: string; at: number }[] = [];
  let i = 0;
  let lastSignificant = '';
  while (i < src.length) {
    const c = src[i] as string;
    if (c === '"' || c === "'") {
      const triple = src.startsWith(c.repeat(3), i);
      const close = triple ? c.repeat(3) : c;
      i += close.length;
      while (i < src.length && !src.startsWith(close, i)) i += src[i] === '\\' ? 2 : 1;
      i += close.length;
      lastSignificant = '"';
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < src.length && /[A-Za-z0-9_]/.test(src[i] as string)) i++;
      const name = src.slice(start, i);
      // r"..." and b"..." prefixes belong to the string that follows
      if ((name === 'r' || name === 'R' || name === 'b' || name === 'B') && (src[i] === '"' || src[i] === "'")) continue;
      if (lastSignificant !== '.') idents.push({ name, at: start });
      lastSignificant = 'a';
      continue;
    }
    if (!/\s/.test(c)) lastSignificant = c;
    i++;
  }
  return { idents };
}

export class MacroCycleError extends Error {}

/** expands macros recursively; `defs` maps a macro name to its (unexpanded) condition */
export function expandMacros(src: string, defs: ReadonlyMap<string, string>, used?: Set<string>, stack: string[] = []): string {
  const { idents } = scanIdentifiers(src);
  let out = '';
  let last = 0;
  for (const { name, at } of idents) {
    const body = defs.get(name);
    if (body === undefined) continue;
    if (stack.includes(name)) throw new MacroCycleError(`macro cycle: ${[...stack, name].join(' → ')}`);
    used?.add(name);
    out += `${src.slice(last, at)}(${expandMacros(body, defs, used, [...stack, name])})`;
    last = at + name.length;
  }
  return out + src.slice(last);
}
