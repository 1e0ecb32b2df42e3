// What an options table is, and what is derived from one: commander options for a command,
// the config file's zod schema, its JSON Schema, and the types of flags, file and resolved
// config. Generic over the table so a test can derive all of it from the real table plus one.
import { type Command, Option } from 'commander';
import { z } from 'zod';

export type CommandName = 'exec' | 'run';

export interface DefaultContext {
  command: CommandName;
}
export interface PlaceContext {
  command: CommandName;
  /** relative paths are taken from here: the config file's folder, or the working folder for flags */
  base: string;
}

/** one option, declared once; the key it is stored under is both the flag (without --) and the file key */
export interface OptionSpec<S extends z.ZodType = z.ZodType> {
  value: S;
  /** the resolved config's field */
  field: string;
  help: string;
  /** the value's placeholder in --help (an enum shows its values); a boolean option is a switch */
  arg?: string;
  /** the flag may be repeated and the file may give a list; flags replace the file's whole list */
  repeatable?: true | 'non-empty';
  /** the one command that takes it (default: both); given to the other, it is an error saying `only` */
  commands?: CommandName;
  only?: string;
  /** members of a group are one setting: at most one is given, a command that takes them needs one, and flags replace the file's choice as a whole */
  oneOf?: string;
  /** a flag with no config-file key (`--config` itself) */
  flagOnly?: true;
  /** asked when neither flag nor file gives a value; an empty variable counts as unset */
  env?: string;
  /** a checked value as the commands use it (paths made absolute, addresses parsed) */
  place?: (v: z.output<S>, at: PlaceContext) => unknown;
  /** the resolved value when none is given (a function: it may depend on the command) */
  default?: (at: DefaultContext) => unknown;
}
/** any entry: `place` is typed by its own value schema, so the table only knows it takes something */
export type AnyOption = Omit<OptionSpec, 'place'> & { place?: (v: never, at: PlaceContext) => unknown };
export type OptionTable = Readonly<Record<string, AnyOption>>;

/** the value schema first, so the hooks in `spec` are typed by it; `const` keeps field names literal */
export function option<S extends z.ZodType, const X extends Omit<OptionSpec<S>, 'value'>>(value: S, spec: X): X & { value: S } {
  return { ...spec, value };
}

// ---- types derived from a table

type Camel<S extends string> = S extends `${infer A}-${infer B}` ? `${A}${Capitalize<Camel<B>>}` : S;
type Fn<R> = (...a: never[]) => R;
type Repeatable = { repeatable: true | 'non-empty' };
type ItemOf<E extends AnyOption> = E extends { place: Fn<infer R> } ? R : z.output<E['value']>;
type ValueOf<E extends AnyOption> = E extends Repeatable ? readonly ItemOf<E>[] : ItemOf<E> | (E extends { default: Fn<infer D> } ? D : undefined);
type Always<E> = E extends Repeatable | { default: Fn<unknown> } | { env: string } ? true : false;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** what commander hands over: camelCase keys; strings, lists for repeatable flags, true for switches */
export type FlagsOf<T extends OptionTable> = {
  [K in keyof T & string as Camel<K>]?: T[K] extends Repeatable ? string[] : z.output<T[K]['value']> extends boolean ? boolean : string;
};
/** a checked config file: a single value where a list is allowed stays single */
export type RawOf<T extends OptionTable> = {
  [K in keyof T as T[K] extends { flagOnly: true } ? never : K]?: T[K] extends Repeatable ? z.output<T[K]['value']> | z.output<T[K]['value']>[] : z.output<T[K]['value']>;
};
/** the frozen config: fields with a default (or a list, or an env fallback) are always there */
export type ResolvedOf<T extends OptionTable> = Simplify<
  { readonly command: CommandName } & { readonly [K in keyof T as Always<T[K]> extends true ? T[K]['field'] : never]: ValueOf<T[K]> } & {
    readonly [K in keyof T as Always<T[K]> extends true ? never : T[K]['field']]?: ItemOf<T[K]>;
  }
>;

export const camel = (key: string): string => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
export const takes = (e: AnyOption, command: CommandName): boolean => e.commands === undefined || e.commands === command;

// ---- commander

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

function helpOf(e: AnyOption, command: CommandName): string {
  const extras: string[] = [];
  if (e.repeatable) extras.push('repeatable');
  const d = e.default?.({ command });
  if (typeof d === 'string' || typeof d === 'number') extras.push(`default ${d}`);
  return extras.length > 0 ? `${e.help} (${extras.join('; ')})` : e.help;
}

/**
 * The table's options for one command. Commander does no checking of its own (no choices):
 * every value goes through the option's schema in the resolver, so a flag and a file value
 * are refused by the same rule with the same reason.
 */
export function addOptions(cmd: Command, table: OptionTable, command: CommandName): Command {
  for (const [key, e] of Object.entries(table)) {
    if (!takes(e, command)) continue;
    const arg = e.value instanceof z.ZodEnum ? (e.value.options as string[]).join('|') : (e.arg ?? 'value');
    const o = new Option(e.value instanceof z.ZodBoolean ? `--${key}` : `--${key} <${arg}>`, helpOf(e, command));
    if (e.repeatable) o.argParser(collect);
    cmd.addOption(o);
  }
  return cmd;
}

// ---- the config file

/** one option's file value: a list where the flag repeats (a single value is a one-item list) */
export function fileValue(e: AnyOption): z.ZodType {
  if (!e.repeatable) return e.value;
  const list = z.array(e.value);
  return z.union([e.value, e.repeatable === 'non-empty' ? list.min(1) : list]);
}

/** keys spelled like the flags; unknown keys are errors (a typo must not silently do nothing) */
export function fileSchemaOf<T extends OptionTable>(table: T): z.ZodType<RawOf<T>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, e] of Object.entries(table)) if (!e.flagOnly) shape[key] = fileValue(e).optional().describe(e.help);
  return z.strictObject(shape) as unknown as z.ZodType<RawOf<T>>;
}

/** the config file as JSON Schema (for editors and for checking configs in CI); checks written as code (HOST:PORT, tokens) are not in it */
export function jsonSchemaOf(table: OptionTable): Record<string, unknown> {
  const schema = fileSchemaOf(table).meta({
    title: 'redline config file',
    description: 'YAML read by `redline exec|run --config FILE`; keys are the flags without --, and flags win over the file',
  });
  return z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
}
