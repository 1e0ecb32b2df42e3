// The shape of a rule pack: a YAML list of `list`, `macro`, `rule` and `exception` items.
import { z } from 'zod';
import { CATEGORIES, EVENT_TYPES, SEVERITIES } from '../events.js';

const name = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an identifier (letters, digits, _)');
const ruleId = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'must be lower-case letters, digits, ".", "-" or "_"');

// fail-closed: freeze only when the daemon runs with --fail-closed (for the monitor's own trouble)
export const ACTIONS = ['freeze', 'kill', 'fail-closed'] as const;
export type RuleAction = (typeof ACTIONS)[number];

export const listItem = z.strictObject({
  list: name,
  items: z.array(z.union([z.string(), z.number().transform(String)])),
  append: z.boolean().optional(),
});

export const macroItem = z.strictObject({
  macro: name,
  condition: z.string().min(1),
});

const exceptionEntry = z.strictObject({
  name: z.string().min(1),
  condition: z.string().min(1),
});

export const dedupSpec = z.union([
  z.literal(false),
  z.strictObject({
    window: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+(ms|s|m)$/, 'a duration like 500ms, 10s or 1m')]).optional(),
    by: z.array(z.string()).optional(),
  }),
]);

export const ruleItem = z.strictObject({
  rule: ruleId,
  description: z.string().optional(),
  category: z.enum(CATEGORIES).optional(),
  severity: z.enum(SEVERITIES).optional(),
  events: z.array(z.enum(EVENT_TYPES)).optional(),
  condition: z.string().min(1).optional(),
  summary: z.string().min(1).optional(),
  actions: z.array(z.enum(ACTIONS)).optional(),
  tags: z.array(z.string()).optional(),
  enabled: z.boolean().optional(),
  dedup: dedupSpec.optional(),
  exceptions: z.array(exceptionEntry).optional(),
});

/** adds an exception to a rule defined elsewhere (a site's own file, without editing shipped packs) */
export const exceptionItem = z.strictObject({
  exception: z.string().min(1),
  rule: ruleId,
  condition: z.string().min(1),
});

export type ListItem = z.infer<typeof listItem>;
export type MacroItem = z.infer<typeof macroItem>;
export type RuleItem = z.infer<typeof ruleItem>;
export type ExceptionItem = z.infer<typeof exceptionItem>;

export const ITEM_KINDS = { list: listItem, macro: macroItem, rule: ruleItem, exception: exceptionItem } as const;
export type ItemKind = keyof typeof ITEM_KINDS;

/** a complete rule needs these; a bare `{rule, enabled}` item only toggles an existing rule */
export const RULE_REQUIRED = ['description', 'category', 'severity', 'events', 'condition', 'summary'] as const;

export function durationMs(v: number | string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  const m = /^(\d+)(ms|s|m)$/.exec(v);
  if (!m) return fallback;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}
