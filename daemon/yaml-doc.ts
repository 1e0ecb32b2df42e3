// YAML with positions: parsing into problems, node positions by path, zod issues → problems
// at file:line:col, and offsets inside a scalar's value → source positions (for CEL errors).
// Shared by the rule reader and the config loader.
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, type Scalar } from 'yaml';
import type { z } from 'zod';
import type { LoadProblem } from './events.js';

export type Path = readonly (string | number)[];
export interface Position {
  line: number;
  col: number;
}
export interface ParsedYaml {
  doc: Document | null;
  lineCounter: LineCounter;
  problems: LoadProblem[];
}

// offsetPosition needs the source text, which a Document does not keep; keyed by the
// LineCounter (which every caller already carries) so no source tokens are kept alive.
const TEXTS = new WeakMap<LineCounter, string>();

export function parseYamlText(file: string, text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  TEXTS.set(lineCounter, text);
  const problems: LoadProblem[] = [];
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    // parseDocument reports problems as data; this is only for the unexpected
    problems.push({ code: 'yaml', file, line: 1, col: 1, message: (err as Error).message, severity: 'error' });
    return { doc: null, lineCounter, problems };
  }
  for (const [list, severity] of [
    [doc.errors, 'error'],
    [doc.warnings, 'warning'],
  ] as const) {
    for (const e of list) {
      // linePos is only filled in by prettyErrors, which would also rewrite the message
      let offset = e.pos[0];
      if (e.code === 'MULTILINE_IMPLICIT_KEY') {
        // yaml points at where the would-be key starts; the mistake (usually a line indented
        // one step too far) is where it runs onto the next line, so point there
        const nl = text.indexOf('\n', offset);
        if (nl >= 0 && nl < e.pos[1]) offset = nl + 1 + (/^[ \t]*/.exec(text.slice(nl + 1))?.[0].length ?? 0);
      }
      const at = linePos(lineCounter, offset);
      problems.push({ code: 'yaml', file, line: at.line, col: at.col, message: e.message, severity });
    }
  }
  return { doc, lineCounter, problems };
}

function linePos(lc: LineCounter, offset: number): Position {
  const p = lc.linePos(Math.max(0, offset));
  return p.line === 0 ? { line: 1, col: 1 } : p;
}

/** a node with an empty range (`key:` with nothing after it) has no place of its own */
function hasOwnPlace(n: Node | null | undefined): n is Node {
  return !!n?.range && n.range[1] > n.range[0];
}

interface Found {
  /** the deepest node reached, and the key node it hangs under (when in a map) */
  node: Node | null;
  key: Node | null;
  /** how many path segments were matched */
  depth: number;
}

function walk(doc: Document, path: Path): Found {
  let node = doc.contents as Node | null;
  let key: Node | null = null;
  let depth = 0;
  for (const seg of path) {
    let next: Node | null | undefined;
    let nextKey: Node | null = null;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? String(p.key.value) === String(seg) : false));
      if (!pair) break;
      next = pair.value as Node | null;
      nextKey = pair.key as Node;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg] as Node | null | undefined;
      if (next === undefined) break;
    } else break;
    node = next ?? null;
    key = nextKey;
    depth++;
    if (node === null) break;
  }
  return { node, key, depth };
}

function placeOf(lc: LineCounter, n: Node | null, fallback: Position): Position {
  return hasOwnPlace(n) && n.range ? linePos(lc, n.range[0]) : fallback;
}

/** position of the node at `path`, or of the nearest ancestor that exists; a key without a value gives the key's position */
export function positionOf(doc: Document, lineCounter: LineCounter, path: Path): Position {
  const root = doc.contents as Node | null;
  const rootAt = placeOf(lineCounter, root, { line: 1, col: 1 });
  let at = rootAt;
  // re-walk prefix by prefix so a missing segment falls back to its deepest existing ancestor
  for (let i = 1; i <= path.length; i++) {
    const f = walk(doc, path.slice(0, i));
    if (f.depth < i) break;
    at = placeOf(lineCounter, f.node, placeOf(lineCounter, f.key, at));
  }
  return at;
}

/** position of the key itself when `path` ends in a map key; otherwise as positionOf */
export function keyPositionOf(doc: Document, lineCounter: LineCounter, path: Path): Position {
  const f = walk(doc, path);
  if (f.depth === path.length && f.key && hasOwnPlace(f.key)) return placeOf(lineCounter, f.key, { line: 1, col: 1 });
  return positionOf(doc, lineCounter, path);
}

/** `exceptions[0].name` */
export function formatPath(path: Path): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s ? `.${seg}` : seg;
  return s;
}

// Words a YAML author knows: list and map rather than array and object.
const TYPE_WORDS: Record<string, string> = { array: 'list', object: 'map', record: 'map', int: 'integer', nonoptional: 'a value' };

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'map';
  return typeof v;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

type Issue = z.core.$ZodIssue;

/** one problem per zod issue (per key for unknown keys), at the offending node; `schema` (the one that was parsed at basePath) enables did-you-mean for unknown keys */
export function zodProblems(file: string, doc: Document, lineCounter: LineCounter, error: z.ZodError, basePath: Path = [], schema?: z.ZodType): LoadProblem[] {
  const out: LoadProblem[] = [];
  for (const issue of error.issues) issueProblems(issue, []);
  // zod reports in schema order; a reader wants file order (sort is stable for ties)
  return out.sort((a, b) => a.line - b.line || a.col - b.col);

  function push(rel: Path, at: Position, message: string): void {
    const prefix = rel.length > 0 ? `${formatPath(rel)}: ` : '';
    out.push({ code: 'schema', file, line: at.line, col: at.col, message: prefix + message, severity: 'error' });
  }

  function issueProblems(issue: Issue, prefix: Path): void {
    const rel = [...prefix, ...issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k))];
    const full = [...basePath, ...rel];
    const found = walk(doc, full);
    const present = found.depth === full.length;
    const value = present ? nodeValue(found.node) : undefined;
    const at = () => positionOf(doc, lineCounter, full);
    // a key that is not there at all (zod reports it as the wrong type, not the literal, or no arm of a union)
    const missing = !present && rel.length > 0 && (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union');
    if (missing) {
      push(rel.slice(0, -1), positionOf(doc, lineCounter, full.slice(0, -1)), `missing required key "${String(rel[rel.length - 1])}"`);
      return;
    }
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = schema ? objectKeys(schema, rel) : [];
        for (const k of issue.keys) {
          const hint = closest(k, known);
          push(rel, keyPositionOf(doc, lineCounter, [...full, k]), `unknown key "${k}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
        }
        return;
      }
      case 'invalid_type': {
        const want = TYPE_WORDS[issue.expected] ?? issue.expected;
        push(rel, at(), `expected ${want}, got ${issue.expected === 'int' && typeof value === 'number' ? value : describe(value)}`);
        return;
      }
      case 'invalid_value':
        // enum and literal; the values are shown bare, as a user would type them
        push(rel, at(), `${show(value)} is not one of ${issue.values.map(String).join(', ')}`);
        return;
      case 'invalid_union':
        unionProblems(issue, rel, value);
        return;
      case 'too_small':
      case 'too_big':
        push(rel, at(), boundMessage(issue));
        return;
      default:
        // invalid_format (regex: the schema's own message), custom refinements, …
        push(rel, at(), issue.message);
    }
  }

  // A union's issues come per arm. Arms that failed on the value's very type were the wrong
  // arm; when some arm got further, its issues are the ones that explain the mistake.
  function unionProblems(issue: z.core.$ZodIssueInvalidUnion, rel: Path, value: unknown): void {
    const arms = issue.errors;
    const wrongType = (iss: Issue) => iss.path.length === 0 && (iss.code === 'invalid_type' || iss.code === 'invalid_value');
    const further = arms.filter((a) => a.length > 0 && !a.every(wrongType));
    if (further.length > 0) {
      // the arm that got deepest into the value is the one the author meant
      const depth = (a: Issue[]) => Math.max(...a.map((i) => i.path.length + (i.code === 'unrecognized_keys' ? 1 : 0)));
      const best = further.reduce((a, b) => (depth(b) > depth(a) ? b : a));
      for (const i of best) issueProblems(i, rel);
      return;
    }
    const wants = arms.flat().flatMap((i) => (i.code === 'invalid_type' ? [TYPE_WORDS[i.expected] ?? i.expected] : i.code === 'invalid_value' ? i.values.map(String) : []));
    const unique = [...new Set(wants)];
    const full = [...basePath, ...rel];
    push(rel, positionOf(doc, lineCounter, full), unique.length > 0 ? `expected ${unique.join(' or ')}, got ${describe(value)}` : issue.message);
  }
}

function nodeValue(n: Node | null): unknown {
  if (n === null) return null;
  if (isScalar(n)) return n.value;
  if (isSeq(n)) return [];
  if (isMap(n)) return {};
  return undefined;
}

function boundMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  const small = issue.code === 'too_small';
  const n = Number(small ? (issue as z.core.$ZodIssueTooSmall).minimum : (issue as z.core.$ZodIssueTooBig).maximum);
  const incl = issue.inclusive !== false;
  if (issue.origin === 'string' || issue.origin === 'array') {
    const unit = issue.origin === 'string' ? 'characters' : 'items';
    if (small && n === 1) return 'must not be empty';
    return `must have ${issue.exact ? 'exactly' : small ? 'at least' : 'at most'} ${n} ${unit}`;
  }
  if (small) return incl ? `must be at least ${n}` : `must be greater than ${n}`;
  return incl ? `must be at most ${n}` : `must be less than ${n}`;
}

// Follow a zod schema along a path to the object(s) there, for did-you-mean.
function objectKeys(schema: z.ZodType, path: Path): string[] {
  const keys = new Set<string>();
  const visit = (s: z.core.$ZodType | undefined, i: number, seen: number): void => {
    if (!s || seen > 64) return;
    const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
    const inner = (k: string) => def[k] as z.core.$ZodType | undefined;
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'nonoptional':
      case 'readonly':
      case 'catch':
        visit(inner('innerType'), i, seen + 1);
        return;
      case 'pipe':
        visit(inner('in'), i, seen + 1);
        return;
      case 'lazy':
        visit((def.getter as () => z.core.$ZodType)(), i, seen + 1);
        return;
      case 'union':
        for (const o of def.options as z.core.$ZodType[]) visit(o, i, seen + 1);
        return;
      case 'array':
        if (i < path.length && typeof path[i] === 'number') visit(inner('element'), i + 1, seen + 1);
        return;
      case 'object': {
        const shape = def.shape as Record<string, z.core.$ZodType>;
        if (i === path.length) for (const k of Object.keys(shape)) keys.add(k);
        else visit(shape[String(path[i])], i + 1, seen + 1);
        return;
      }
    }
  };
  visit(schema, 0, 0);
  return [...keys];
}

/** the known key nearest to a mistyped one, if it is plausibly a typo */
function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

// ---- offsets inside a scalar's value → source positions ----

/** one source line's contribution to the value: its decoded text and where each char came from */
interface Segment {
  text: string;
  offs: number[];
  /** source offset just past the segment, where the line break (a fold) sits */
  end: number;
}

const WS = new Set([' ', '\t', '\r']);
/** what folding and chomping put between lines in a value */
const SEP = new Set([' ', '\t', '\r', '\n']);
// YAML double-quote escapes that stand for one character
const ESCAPES: Record<string, string> = {
  '0': '\0', a: '\x07', b: '\b', t: '\t', '\t': '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b', ' ': ' ', '"': '"', '/': '/',
  '\\': '\\', N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029',
};

/** source lines between [from, to), each as [start, end) with '\r' and '\n' excluded */
function lines(text: string, from: number, to: number): [number, number][] {
  const out: [number, number][] = [];
  let s = from;
  while (s <= to) {
    let e = text.indexOf('\n', s);
    if (e < 0 || e > to) e = to;
    out.push([s, e > s && text[e - 1] === '\r' ? e - 1 : e]);
    if (e >= to) break;
    s = e + 1;
  }
  return out;
}

/** flow scalars: each line trimmed (but not the outer edges of a quoted scalar), then decoded */
function flowSegments(text: string, from: number, to: number, quote: '' | "'" | '"'): Segment[] {
  const ls = lines(text, from, to);
  const segs: Segment[] = [];
  ls.forEach(([s0, e0], i) => {
    let s = s0;
    let e = e0;
    if (i > 0 || !quote) while (s < e && WS.has(text[s] ?? '')) s++;
    if (i < ls.length - 1 || !quote) while (e > s && WS.has(text[e - 1] ?? '')) e--;
    const seg: Segment = { text: '', offs: [], end: e };
    for (let p = s; p < e; ) {
      const c = text[p] ?? '';
      let len = 1;
      let out = c;
      if (quote === "'" && c === "'" && text[p + 1] === "'") len = 2;
      else if (quote === '"' && c === '\\') {
        const n = text[p + 1];
        if (n === undefined || p + 1 >= e) {
          // escaped line break: joins the lines with nothing between them
          out = '';
        } else {
          const hex = n === 'x' ? 2 : n === 'u' ? 4 : n === 'U' ? 8 : 0;
          len = 2 + hex;
          const cp = hex ? Number.parseInt(text.slice(p + 2, p + 2 + hex), 16) : Number.NaN;
          out = hex ? String.fromCodePoint(cp >= 0 && cp <= 0x10ffff ? cp : 0x3f) : (ESCAPES[n] ?? n);
        }
      }
      for (let k = 0; k < out.length; k++) {
        seg.text += out[k];
        seg.offs.push(p);
      }
      p += len;
    }
    if (seg.text) segs.push(seg);
  });
  return segs;
}

/** block scalars: content lines start on the line after the header, at the block's indentation */
function blockSegments(text: string, header: number, to: number, value: string): Segment[] {
  const nl = text.indexOf('\n', header);
  if (nl < 0 || nl >= to) return [];
  const ls = lines(text, nl + 1, to);
  // indentation = the first content line's indent minus what the value kept of it; this also
  // covers an explicit indentation indicator without knowing the parent's indent
  const firstSrc = ls.find(([s, e]) => /\S/.test(text.slice(s, e)));
  const firstVal = value.split('\n').find((l) => /\S/.test(l)) ?? '';
  const srcIndent = firstSrc ? /^ */.exec(text.slice(firstSrc[0], firstSrc[1]))?.[0].length ?? 0 : 0;
  const indent = Math.max(0, srcIndent - (/^ */.exec(firstVal)?.[0].length ?? 0));
  const segs: Segment[] = [];
  for (const [s, e] of ls) {
    if (s + indent >= e) continue;
    const seg: Segment = { text: text.slice(s + indent, e), offs: [], end: e };
    for (let p = s + indent; p < e; p++) seg.offs.push(p);
    segs.push(seg);
  }
  return segs;
}

/** lines up segments with the value; what lies between them in the value (folds, kept newlines) maps to the line break before */
function alignSegments(value: string, segs: Segment[], start: number): number[] {
  const map: number[] = new Array(value.length).fill(-1);
  let v = 0;
  let prevEnd = start;
  for (const seg of segs) {
    let p = v;
    while (p < value.length && !value.startsWith(seg.text, p) && SEP.has(value[p] ?? '')) p++;
    if (!value.startsWith(seg.text, p)) {
      p = v;
      while (p < value.length && value[p] === '\n') p++;
    }
    for (let k = v; k < p; k++) map[k] = prevEnd;
    // copies what matches; after a decoding mismatch the rest is filled in approximately below
    for (let j = 0; j < seg.text.length && p + j < value.length; j++) map[p + j] = seg.offs[j] ?? prevEnd;
    v = p + seg.text.length;
    prevEnd = seg.end;
    if (v >= value.length) break;
  }
  let last = start;
  for (let k = 0; k < map.length; k++) {
    if ((map[k] ?? -1) < 0) map[k] = k >= v ? prevEnd : last;
    last = map[k] ?? last;
  }
  return map;
}

/**
 * Where a character offset inside a scalar's parsed string value sits in the source. Exact for
 * single-line plain and quoted scalars and for `|`/`>` blocks; approximate for escapes and
 * folded multi-line flow scalars; always inside the scalar's range.
 */
export function offsetPosition(node: Node, lineCounter: LineCounter, offset: number): Position {
  const range = node.range;
  if (!range) return { line: 1, col: 1 };
  const start = range[0];
  const last = Math.max(start, range[1] - 1);
  const clamp = (o: number) => linePos(lineCounter, Math.min(Math.max(o, start), last));
  const text = TEXTS.get(lineCounter);
  if (!isScalar(node)) return clamp(start);
  const type = (node as Scalar).type;
  const quoted = type === 'QUOTE_DOUBLE' || type === 'QUOTE_SINGLE';
  if (text === undefined) return clamp(start + (quoted ? 1 : 0) + Math.max(0, offset));

  const value = typeof node.value === 'string' ? node.value : String(node.value);
  let segs: Segment[];
  if (type === 'BLOCK_LITERAL' || type === 'BLOCK_FOLDED') {
    segs = blockSegments(text, start, range[1], value);
  } else if (quoted) {
    const q = type === 'QUOTE_DOUBLE' ? '"' : "'";
    const open = text.indexOf(q, start);
    if (open < 0 || open >= range[1]) return clamp(start + Math.max(0, offset));
    const close = text[range[1] - 1] === q && range[1] - 1 > open ? range[1] - 1 : range[1];
    segs = flowSegments(text, open + 1, close, q);
  } else {
    segs = flowSegments(text, start, range[1], '');
  }
  const map = alignSegments(value, segs, start);
  if (map.length === 0) return clamp(start + (quoted ? 1 : 0));
  const i = Math.max(0, Math.floor(offset));
  // one past the value's end (an "unexpected end" error) points just after its last character
  return i < map.length ? clamp(map[i] ?? start) : clamp((map[map.length - 1] ?? start) + 1);
}
