// Compiler: read items → compiled rules. CEL is parsed and type-checked here, once;
// nothing is interpreted per event.
import { isScalar, type Node } from 'yaml';
import type { Category, EventType, LoadProblem, Severity } from '../events.js';
import { offsetPosition } from '../yaml-doc.js';
import { type CelContext, fieldValue, isKnownPath, makeEnvironment } from './context.js';
import { expandMacros, MacroCycleError } from './macros.js';
import { itemPos, type ReadItem } from './reader.js';
import { durationMs, type ExceptionItem, type ListItem, type MacroItem, RULE_REQUIRED, type RuleAction, type RuleItem } from './schema.js';

export type Condition = (ctx: CelContext) => unknown;

export interface CompiledRule {
  id: string;
  description: string;
  category: Category;
  severity: Severity;
  events: EventType[];
  condition: Condition;
  exceptions: { name: string; condition: Condition }[];
  summary: (ctx: CelContext) => string;
  actions: RuleAction[];
  tags: string[];
  dedup: { windowMs: number; by: string[] } | null;
  file: string;
  line: number;
  /**
   * it looks at `open` events and its condition does not require `evt.write`: read-only
   * opens of small files must reach it (the sensor drops them in the kernel otherwise)
   */
  readsOpens: boolean;
}

/** the condition is a conjunction with `evt.write` as one of its top-level terms */
export function requiresWrite(condition: string): boolean {
  let depth = 0;
  let quote = '';
  let term = '';
  const terms: string[] = [];
  for (let i = 0; i < condition.length; i++) {
    const c = condition[i] as string;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (depth === 0 && c === '|' && condition[i + 1] === '|') return false;
    else if (depth === 0 && c === '&' && condition[i + 1] === '&') {
      terms.push(term.trim());
      term = '';
      i++;
      continue;
    }
    term += c;
  }
  terms.push(term.trim());
  // a parenthesised term (an expanded macro) is a conjunction of its own
  return terms.some((t) => t === 'evt.write' || (wrapped(t) && requiresWrite(t.slice(1, -1))));
}

/** the whole of `t` is one pair of parentheses */
function wrapped(t: string): boolean {
  if (!t.startsWith('(') || !t.endsWith(')')) return false;
  let depth = 0;
  for (let i = 0; i < t.length - 1; i++) {
    if (t[i] === '(') depth++;
    else if (t[i] === ')') depth--;
    if (depth === 0) return false;
  }
  return true;
}

export interface CompileResult {
  rules: CompiledRule[];
  problems: LoadProblem[];
}

const DEFAULT_DEDUP = { windowMs: 10_000, by: ['proc.key'] };

type Env = ReturnType<typeof makeEnvironment>;

interface CelFailure {
  message: string;
  offset: number | null;
}

function celError(err: unknown): CelFailure {
  const e = err as { message?: string; node?: { pos?: number } };
  return { message: (e.message ?? String(err)).split('\n')[0] ?? 'invalid expression', offset: typeof e.node?.pos === 'number' ? e.node.pos : null };
}

/** type-checks `src` in `env`; null when it is a valid bool expression */
function checkCel(env: Env, src: string): CelFailure | null {
  try {
    const res = env.parse(src).check() as { valid: boolean; type?: string; error?: unknown };
    if (!res.valid) return celError(res.error);
    if (res.type !== 'bool' && res.type !== 'dyn') return { message: `condition must be a bool, this is ${res.type}`, offset: 0 };
    return null;
  } catch (err) {
    return celError(err);
  }
}

export function compile(items: readonly ReadItem[]): CompileResult {
  const problems: LoadProblem[] = [];
  const err = (item: ReadItem, key: string | undefined, code: string, message: string, offset?: number | null) => {
    let at = itemPos(item, key);
    if (key && offset !== null && offset !== undefined) {
      const node = item.source.doc.getIn([item.index, key], true) as Node | undefined;
      if (node && isScalar(node)) at = offsetPosition(node, item.source.lineCounter, offset);
    }
    problems.push({ code, file: item.source.file, ...at, message, severity: 'error' });
  };
  const warn = (item: ReadItem, key: string | undefined, code: string, message: string) => {
    problems.push({ code, file: item.source.file, ...itemPos(item, key), message, severity: 'warning' });
  };

  // lists (later `append: true` items extend earlier ones)
  const lists = new Map<string, string[]>();
  const listItems = new Map<string, ReadItem>();
  for (const it of items.filter((i) => i.kind === 'list')) {
    const v = it.value as ListItem;
    const prev = lists.get(v.list);
    if (v.append) {
      if (!prev) err(it, 'list', 'unknown-list', `append to unknown list "${v.list}"`);
      else prev.push(...v.items);
    } else lists.set(v.list, [...v.items]);
    if (!listItems.has(v.list)) listItems.set(v.list, it);
  }

  const macros = new Map<string, string>();
  const macroItems = new Map<string, ReadItem>();
  for (const it of items.filter((i) => i.kind === 'macro')) {
    const v = it.value as MacroItem;
    if (lists.has(v.macro)) err(it, 'macro', 'duplicate', `"${v.macro}" is already a list`);
    macros.set(v.macro, v.condition);
    macroItems.set(v.macro, it);
  }

  // checking env: macros are bool variables, so errors point into the text as written
  const checkEnv = makeEnvironment(lists);
  for (const m of macros.keys()) checkEnv.registerVariable(m, 'bool');
  const evalEnv = makeEnvironment(lists);

  const usedMacros = new Set<string>();
  const usedLists = new Set<string>();
  const noteLists = (src: string) => {
    for (const name of lists.keys()) if (new RegExp(`\\b${name}\\b`).test(src)) usedLists.add(name);
  };

  const compileCondition = (item: ReadItem, key: string, src: string): Condition | null => {
    const bad = checkCel(checkEnv, src);
    if (bad) {
      err(item, key, 'cel', `${key}: ${bad.message}`, bad.offset);
      return null;
    }
    try {
      const expanded = expandMacros(src, macros, usedMacros);
      noteLists(expanded);
      return evalEnv.parse(expanded) as unknown as Condition;
    } catch (e) {
      err(item, key, e instanceof MacroCycleError ? 'macro-cycle' : 'cel', `${key}: ${celError(e).message}`);
      return null;
    }
  };

  for (const [name, it] of macroItems) {
    const bad = checkCel(checkEnv, macros.get(name) as string);
    if (bad) err(it, 'condition', 'cel', `condition: ${bad.message}`, bad.offset);
  }

  const exceptionsFor = new Map<string, { item: ReadItem; v: ExceptionItem }[]>();
  for (const it of items.filter((i) => i.kind === 'exception')) {
    const v = it.value as ExceptionItem;
    const list = exceptionsFor.get(v.rule) ?? [];
    list.push({ item: it, v });
    exceptionsFor.set(v.rule, list);
  }

  const rules: CompiledRule[] = [];
  const defined = new Map<string, ReadItem>();
  const toggles: { item: ReadItem; v: RuleItem }[] = [];
  for (const it of items.filter((i) => i.kind === 'rule')) {
    const v = it.value as RuleItem;
    const keys = Object.keys(v).filter((k) => k !== 'rule');
    if (keys.length === 1 && keys[0] === 'enabled') {
      toggles.push({ item: it, v });
      continue;
    }
    const missing = RULE_REQUIRED.filter((k) => v[k] === undefined);
    if (missing.length > 0) {
      err(it, undefined, 'schema', `rule "${v.rule}": missing required key${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}`);
      continue;
    }
    const first = defined.get(v.rule);
    if (first) {
      err(it, 'rule', 'duplicate', `rule "${v.rule}" is already defined at ${first.source.file}:${itemPos(first).line}`);
      continue;
    }
    defined.set(v.rule, it);
    if (v.events?.length === 0) warn(it, 'events', 'no-events', `rule "${v.rule}" names no event type and will never run`);
    // a scan marks when exploring began: it is never a reason to stop the subject
    if (v.category === 'system.scan' && (v.actions ?? []).some((a) => a !== 'fail-closed')) {
      err(it, 'actions', 'scan-action', `rule "${v.rule}": a system.scan rule never freezes or kills (its alerts mark exploration, severity info or low)`);
      continue;
    }
    if (v.category === 'system.scan' && v.severity !== 'info' && v.severity !== 'low') {
      err(it, 'severity', 'scan-severity', `rule "${v.rule}": a system.scan rule is info or low, not ${v.severity}`);
      continue;
    }

    const condition = compileCondition(it, 'condition', v.condition as string);
    const exceptions: CompiledRule['exceptions'] = [];
    for (const ex of v.exceptions ?? []) {
      const c = compileCondition(it, 'exceptions', ex.condition);
      if (c) exceptions.push({ name: ex.name, condition: c });
    }
    for (const { item, v: ex } of exceptionsFor.get(v.rule) ?? []) {
      const c = compileCondition(item, 'condition', ex.condition);
      if (c) exceptions.push({ name: ex.exception, condition: c });
    }
    const summary = compileTemplate(v.summary as string, (m) => err(it, 'summary', 'template', m));
    let dedup: CompiledRule['dedup'] = DEFAULT_DEDUP;
    if (v.dedup === false) dedup = null;
    else if (v.dedup) {
      dedup = { windowMs: durationMs(v.dedup.window, DEFAULT_DEDUP.windowMs), by: v.dedup.by ?? DEFAULT_DEDUP.by };
      for (const p of dedup.by) if (!isKnownPath(p)) err(it, 'dedup', 'unknown-field', `dedup.by: unknown field "${p}"`);
    }
    if (!condition || !summary) continue;
    rules.push({
      id: v.rule,
      description: v.description ?? '',
      category: v.category as Category,
      severity: v.severity as Severity,
      events: [...new Set(v.events ?? [])],
      condition,
      exceptions,
      summary,
      actions: v.actions ?? [],
      tags: v.tags ?? [],
      dedup,
      file: it.source.file,
      line: itemPos(it).line,
      readsOpens: (v.events ?? []).includes('open') && !requiresWrite(expandMacros(v.condition as string, macros, new Set())),
    });
    if (v.enabled === false) rules.pop();
  }

  for (const { item, v } of toggles) {
    if (!defined.has(v.rule)) err(item, 'rule', 'unknown-rule', `no rule "${v.rule}" to ${v.enabled ? 'enable' : 'disable'}`);
    else if (v.enabled === false) {
      const i = rules.findIndex((r) => r.id === v.rule);
      if (i >= 0) rules.splice(i, 1);
    }
  }
  for (const [rule, list] of exceptionsFor) {
    if (!defined.has(rule)) for (const { item } of list) err(item, 'rule', 'unknown-rule', `exception for unknown rule "${rule}"`);
  }
  for (const [name, it] of macroItems) if (!usedMacros.has(name)) warn(it, undefined, 'unused-macro', `macro "${name}" is never used`);
  for (const [name, it] of listItems) if (!usedLists.has(name)) warn(it, undefined, 'unused-list', `list "${name}" is never used`);
  return { rules, problems };
}

/** "{proc.comm} sent {evt.sig_name}" → a function; unknown fields are load errors */
export function compileTemplate(src: string, onError: (message: string) => void): ((ctx: CelContext) => string) | null {
  const parts: (string | { path: string })[] = [];
  let ok = true;
  let last = 0;
  for (const m of src.matchAll(/\{([^{}]*)\}/g)) {
    const path = (m[1] as string).trim();
    if (!isKnownPath(path)) {
      onError(`summary: unknown field "{${path}}"`);
      ok = false;
    }
    parts.push(src.slice(last, m.index), { path });
    last = (m.index as number) + m[0].length;
  }
  parts.push(src.slice(last));
  if (!ok) return null;
  return (ctx) => {
    let out = '';
    for (const p of parts) {
      if (typeof p === 'string') out += p;
      else {
        const v = fieldValue(ctx, p.path);
        out += Array.isArray(v) ? v.join(' ') : v === undefined || v === '' ? '?' : String(v);
      }
    }
    return out;
  };
}
