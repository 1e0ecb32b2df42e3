// Reader: rule files and folders → validated items, each with where it came from.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { isMap, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { LoadProblem } from '../events.js';
import { keyPositionOf, parseYamlText, positionOf, zodProblems } from '../yaml-doc.js';
import { ITEM_KINDS, type ItemKind } from './schema.js';

export interface Source {
  file: string;
  doc: Document;
  lineCounter: LineCounter;
}

export interface ReadItem<K extends ItemKind = ItemKind> {
  kind: K;
  value: import('zod').infer<(typeof ITEM_KINDS)[K]>;
  source: Source;
  /** the item's index in the file's top-level list */
  index: number;
}

export interface ReadResult {
  items: ReadItem[];
  files: string[];
  problems: LoadProblem[];
}

const RULE_EXTENSIONS = new Set(['.yaml', '.yml']);

/** expands folders (sorted, not recursive beyond one level of nesting) into rule files */
export function ruleFiles(paths: readonly string[], problems: LoadProblem[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(p);
    } catch (err) {
      problems.push({ code: 'io', file: p, line: 1, col: 1, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, severity: 'error' });
      continue;
    }
    if (!st.isDirectory()) {
      out.push(p);
      continue;
    }
    const names = readdirSync(p).filter((n) => RULE_EXTENSIONS.has(extname(n))).sort();
    if (names.length === 0) problems.push({ code: 'io', file: p, line: 1, col: 1, message: 'folder holds no .yaml rule files', severity: 'warning' });
    for (const n of names) out.push(join(p, n));
  }
  return out;
}

export function readRuleText(file: string, text: string, problems: LoadProblem[]): ReadItem[] {
  const parsed = parseYamlText(file, text);
  problems.push(...parsed.problems);
  const { doc, lineCounter } = parsed;
  if (!doc || parsed.problems.some((p) => p.severity === 'error')) return [];
  const source: Source = { file, doc, lineCounter };
  const root = doc.contents as Node | null;
  if (root === null) return [];
  if (!isSeq(root)) {
    const at = positionOf(doc, lineCounter, []);
    problems.push({ code: 'shape', file, ...at, message: 'a rule file is a YAML list of list/macro/rule/exception items', severity: 'error' });
    return [];
  }
  const items: ReadItem[] = [];
  root.items.forEach((node, index) => {
    const at = positionOf(doc, lineCounter, [index]);
    if (!isMap(node)) {
      problems.push({ code: 'shape', file, ...at, message: 'each item must be a map with one of the keys list, macro, rule, exception', severity: 'error' });
      return;
    }
    const raw = (node as Node).toJSON() as Record<string, unknown>;
    const kinds = (Object.keys(ITEM_KINDS) as ItemKind[]).filter((k) => k in raw);
    // `rule` also appears inside exception items as the rule they attach to
    const kind: ItemKind | undefined = kinds.includes('exception') ? 'exception' : kinds[0];
    if (!kind || (kinds.length > 1 && kind !== 'exception')) {
      problems.push({ code: 'shape', file, ...at, message: kind ? `item has more than one kind: ${kinds.join(', ')}` : 'item has none of the keys list, macro, rule, exception', severity: 'error' });
      return;
    }
    const res = ITEM_KINDS[kind].safeParse(raw);
    if (!res.success) {
      problems.push(...zodProblems(file, doc, lineCounter, res.error, [index], ITEM_KINDS[kind]));
      return;
    }
    items.push({ kind, value: res.data, source, index } as ReadItem);
  });
  return items;
}

export function readRules(paths: readonly string[]): ReadResult {
  const problems: LoadProblem[] = [];
  const files = ruleFiles(paths, problems);
  const items: ReadItem[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push({ code: 'io', file, line: 1, col: 1, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, severity: 'error' });
      continue;
    }
    items.push(...readRuleText(file, text, problems));
  }
  return { items, files, problems };
}

/** where a field of an item sits, for messages */
export function itemPos(item: ReadItem, key?: string): { line: number; col: number } {
  const { doc, lineCounter } = item.source;
  return key ? positionOf(doc, lineCounter, [item.index, key]) : keyPositionOf(doc, lineCounter, [item.index, item.kind]);
}
