// Flags, a checked config file and the environment → one frozen config, for any options table.
// Every value, wherever it came from, passes the option's own schema; problems are data, and a
// flag problem names its flag (line 0), so it prints as `--mode: "fast" is not one of observe, enforce`.
import { dirname } from 'node:path';
import { z } from 'zod';
import type { LoadProblem } from '../events.js';
import type { Position } from '../yaml-doc.js';
import { camel, type CommandName, fileValue, type FlagsOf, type AnyOption, type OptionTable, type RawOf, type ResolvedOf, takes } from './table.js';

/** where a loaded config came from; rides on the raw object under a symbol so callers can pass it along untouched */
export const CONFIG_SOURCE = Symbol('redline.configSource');
export interface ConfigSource {
  /** absolute path of the file */
  file: string;
  /** the file's name as given, for messages */
  shown: string;
  positions: Partial<Record<string, Position>>;
}
export type LoadedOf<T extends OptionTable> = RawOf<T> & { readonly [CONFIG_SOURCE]?: ConfigSource };

type Issue = z.core.$ZodIssue;

// A flag is a string: a number option reads it as plain decimal (so '', '0x10' and '1e3' are refused)
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)$/;
function coerce(schema: z.ZodType, raw: unknown): unknown {
  if (typeof raw !== 'string' || !(schema instanceof z.ZodNumber)) return raw;
  return DECIMAL.test(raw.trim()) ? Number(raw) : Number.NaN;
}

// A union reports per arm; arms that failed on the value's very type were the wrong arm.
function explaining(issues: readonly Issue[]): Issue[] {
  return issues.flatMap((i) => {
    if (i.code !== 'invalid_union') return [i];
    const wrongType = (x: Issue) => x.code === 'invalid_type' || x.code === 'invalid_value';
    const further = i.errors.filter((arm) => arm.length > 0 && !arm.every(wrongType));
    return further.length > 0 ? explaining(further.flat()) : [i];
  });
}

/** why a value typed by hand (flag, environment) is refused, quoting it as typed */
export function valueProblem(schema: z.ZodType, raw: unknown, issues: readonly Issue[]): string {
  const shown = typeof raw === 'string' ? JSON.stringify(raw) : String(raw);
  const flat = explaining(issues);
  const custom = flat.find((i) => i.code === 'custom');
  if (custom) return custom.message; // the schema's own reason (HOST:PORT, token, a sensor that is not built)
  if (schema.description) return `${shown} is not ${schema.description}`;
  const first = flat[0];
  if (first?.code === 'invalid_value') return `${shown} is not one of ${first.values.map(String).join(', ')}`;
  if (first?.code === 'too_small' && first.origin === 'string') return 'must not be empty';
  return first?.message ?? `${shown} is not valid`;
}

const orList = (xs: string[]) => (xs.length > 1 ? `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}` : (xs[0] ?? ''));

/**
 * Flags win over the file, the file over `env`, that over the default. A repeatable flag
 * replaces the file's whole list. Relative paths from the file are taken from the file's
 * folder, from flags and the environment from the working folder. A `oneOf` group is one
 * setting: any flag of it replaces the file's choice. An option given to the command that
 * does not take it is an error, not silently ignored.
 */
export function resolveWith<T extends OptionTable>(
  table: T,
  command: CommandName,
  raw: LoadedOf<T> | undefined,
  flags: FlagsOf<T>,
  env: NodeJS.ProcessEnv,
): { config?: ResolvedOf<T>; problems: LoadProblem[] } {
  const problems: LoadProblem[] = [];
  const src = raw?.[CONFIG_SOURCE];
  const cwd = process.cwd();
  const file = (raw ?? {}) as Record<string, unknown>;
  const flag = flags as Record<string, unknown>;
  const entries = Object.entries(table);

  const fromFlag = (key: string) => flag[camel(key)] !== undefined;
  const inFile = (key: string) => !table[key]?.flagOnly && file[key] !== undefined;
  const error = (code: string, where: string, message: string, at = { line: 0, col: 0 }) => problems.push({ code, file: where, ...at, message, severity: 'error' });
  const flagProblem = (key: string, message: string) => error('flag', `--${key}`, message);
  const fileProblem = (key: string, message: string) => {
    const at = src?.positions[key];
    error('config', src?.shown ?? 'config', `${key}: ${message}`, at);
  };
  const blame = (key: string, message: string) => (fromFlag(key) ? flagProblem(key, message) : fileProblem(key, message));

  const flagGroups = new Set(entries.filter(([k, e]) => e.oneOf && fromFlag(k)).map(([, e]) => e.oneOf));
  /** the file's value counts unless a flag of its group replaced the group */
  const fileCounts = (key: string, e: AnyOption) => inFile(key) && !(e.oneOf && flagGroups.has(e.oneOf));

  const values: Record<string, unknown> = { command };
  for (const [key, e] of entries) {
    values[e.field] = undefined;
    if (!takes(e, command)) {
      if (fromFlag(key) || inFile(key)) blame(key, e.only ?? `only \`${e.commands ?? ''}\` takes this`);
      continue;
    }
    /** a value typed by hand (a flag, a variable) is coerced from its string; a file's value is typed already */
    const one = (typed: unknown, base: string, refuse: (m: string) => void, fromFile = false): unknown[] => {
      const schema = fromFile ? fileValue(e) : e.value;
      const r = schema.safeParse(fromFile ? typed : coerce(schema, typed));
      if (!r.success) {
        refuse(valueProblem(schema, typed, r.error.issues));
        return [];
      }
      const list = e.repeatable && Array.isArray(r.data) ? (r.data as unknown[]) : [r.data];
      return e.place ? list.map((v) => e.place?.(v as never, { command, base })) : list;
    };
    let got: unknown[] | undefined;
    if (fromFlag(key)) {
      const f = flag[camel(key)];
      got = (e.repeatable ? (f as string[]) : [f]).flatMap((s) => one(s, cwd, (m) => flagProblem(key, m)));
    } else if (fileCounts(key, e)) {
      // loadConfigFile checked it already; a config built in code may not have been
      got = one(file[key], src ? dirname(src.file) : cwd, (m) => fileProblem(key, m), true);
    } else if (e.env && env[e.env]) {
      const name = e.env;
      got = one(env[name], cwd, (m) => error('env', name, m));
    }
    const v = got ? (e.repeatable ? got : got[0]) : (e.default?.({ command }) ?? (e.repeatable ? [] : undefined));
    values[e.field] = typeof v === 'object' && v !== null ? Object.freeze(v) : v;
  }

  for (const group of new Set(entries.flatMap(([, e]) => (e.oneOf && takes(e, command) ? [e.oneOf] : [])))) {
    const members = entries.filter(([, e]) => e.oneOf === group && takes(e, command));
    const chosen = members.filter(([k, e]) => fromFlag(k) || fileCounts(k, e)).map(([k]) => k);
    if (chosen.length === 0) error('config', command, `needs a ${group}: ${orList(members.map(([k, e]) => `--${k} ${(e.arg ?? '').toUpperCase()}`))}`);
    for (const k of chosen.slice(1)) blame(k, `conflicts with ${chosen[0]}: give exactly one ${group}`);
  }

  if (problems.length > 0) return { problems };
  return { config: Object.freeze(values) as ResolvedOf<T>, problems };
}
