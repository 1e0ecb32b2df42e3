// YAML with positions: parsing into problems, node positions by path, zod issues → problems
// at file:line:col, and offsets inside a scalar's value → source positions (for CEL errors).
// Shared by the rule reader and the config loader.
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, type Scalar } from 'yaml';
import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';
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
          const hint = closestKey(k, known);
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

// The keys of the object(s) a schema has at a path, for did-you-mean. Read from the schema's
// JSON Schema (zod's public toJSONSchema) rather than from zod's internal definitions.
interface JsonSchema {
  $ref?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  prefixItems?: JsonSchema[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
}

function objectKeys(schema: z.ZodType, path: Path): string[] {
  let root: JsonSchema;
  try {
    root = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  } catch {
    return [];
  }
  // `#` or `#/$defs/name`: where zod puts a schema that is used recursively
  const resolve = (ref: string): JsonSchema | undefined =>
    ref
      .replace(/^#\/?/, '')
      .split('/')
      .filter(Boolean)
      .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], root) as JsonSchema | undefined;
  const keys = new Set<string>();
  const visit = (s: JsonSchema | undefined, i: number, seen: number): void => {
    if (!s || seen > 64) return;
    if (s.$ref) visit(resolve(s.$ref), i, seen + 1);
    for (const arm of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) visit(arm, i, seen + 1);
    const seg = path[i];
    if (seg === undefined) for (const k of Object.keys(s.properties ?? {})) keys.add(k);
    else if (typeof seg === 'number') visit(s.prefixItems?.[seg] ?? s.items, i + 1, seen + 1);
    else visit(s.properties?.[seg], i + 1, seen + 1);
  };
  visit(root, 0, 0);
  return [...keys];
}

/** the known key nearest to a mistyped one (ignoring case), if it is plausibly a typo */
function closestKey(word: string, known: readonly string[]): string | undefined {
  const lower = known.map((k) => k.toLowerCase());
  const best = closest(word.toLowerCase(), lower) as string | undefined;
  if (best === undefined) return undefined;
  return distance(word.toLowerCase(), best) <= Math.max(1, Math.floor(best.length / 3)) ? known[lower.indexOf(best)] : undefined;
}

// ---- offsets inside a scalar's value → source positions ----
// Exact for plain scalars and `|`/`>` blocks, which is what rule packs use: their value is their
// source lines (trimmed, or less the block's indentation) joined by folds and line breaks. Any
// other scalar (quoted ones, with their escapes) gets the scalar's start.

/** source lines within [from, to), each as [start, end) with '\r' and '\n' excluded */
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

/** where each source line's text sits, for a plain or block scalar */
function contentLines(text: string, node: Scalar, start: number, end: number, value: string): [number, number][] {
  if (node.type === 'PLAIN') {
    return lines(text, start, end).map(([s, e]): [number, number] => {
      while (s < e && /[ \t]/.test(text[s] ?? '')) s++;
      while (e > s && /[ \t]/.test(text[e - 1] ?? '')) e--;
      return [s, e];
    });
  }
  // a block's content starts on the line after its header
  const nl = text.indexOf('\n', start);
  if (nl < 0 || nl >= end) return [];
  const ls = lines(text, nl + 1, end);
  // indentation = the first content line's indent less what the value kept of it; this also
  // covers an explicit indentation indicator without knowing the parent's indent
  const firstSrc = ls.find(([s, e]) => /\S/.test(text.slice(s, e)));
  const firstVal = value.split('\n').find((l) => /\S/.test(l)) ?? '';
  const indentOf = (l: string) => /^ */.exec(l)?.[0].length ?? 0;
  const indent = firstSrc ? Math.max(0, indentOf(text.slice(firstSrc[0], firstSrc[1])) - indentOf(firstVal)) : 0;
  return ls.map(([s, e]): [number, number] => [Math.min(s + indent, e), e]);
}

/**
 * Where a character offset inside a scalar's parsed string value sits in the source: exact for
 * plain and `|`/`>` block scalars, the scalar's start for anything else; always inside the
 * scalar's range. One past the value's end (an "unexpected end" error) is just after its last
 * character.
 */
export function offsetPosition(node: Node, lineCounter: LineCounter, offset: number): Position {
  const range = node.range;
  if (!range) return { line: 1, col: 1 };
  const [start, end] = range;
  const last = Math.max(start, end - 1);
  const at = (o: number) => linePos(lineCounter, Math.min(Math.max(o, start), last));
  const text = TEXTS.get(lineCounter);
  if (text === undefined || !isScalar(node) || !['PLAIN', 'BLOCK_LITERAL', 'BLOCK_FOLDED'].includes(node.type ?? '')) return at(start);
  const value = String(node.value);
  // map[i]: the source offset of value[i]; a fold or kept line break maps to the end of the line before it
  const map: number[] = [];
  let lineEnd = start;
  for (const [s, e] of contentLines(text, node, start, end, value)) {
    if (s === e) continue;
    const seg = text.slice(s, e);
    let p = map.length;
    while (p < value.length && !value.startsWith(seg, p) && /\s/.test(value[p] ?? '')) p++;
    if (!value.startsWith(seg, p)) break; // not the value's text (a plain number, say): stop here
    while (map.length < p) map.push(lineEnd);
    for (let k = s; k < e; k++) map.push(k);
    lineEnd = e;
  }
  if (map.length === 0) return at(start);
  const i = Math.max(0, Math.floor(offset));
  if (i < map.length) return at(map[i] ?? start);
  return at(i < value.length ? lineEnd : (map[map.length - 1] ?? start) + 1);
}
