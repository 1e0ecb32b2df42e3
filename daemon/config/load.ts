// Config file (YAML, checked with positions) plus command-line flags → one frozen ResolvedConfig.
// The options themselves are options.ts; this is the file reading and the entry points.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { z } from 'zod';
import { formatProblem, type LoadProblem } from '../events.js';
import { keyPositionOf, parseYamlText, zodProblems } from '../yaml-doc.js';
import { type ConfigFlags, configSchema, OPTIONS, type ResolvedConfig } from './options.js';
import { CONFIG_SOURCE, type ConfigSource, type LoadedOf, resolveWith } from './resolve.js';
import { addOptions, type CommandName, fileSchemaOf, type FlagsOf, jsonSchemaOf, type OptionTable, type ResolvedOf } from './table.js';

export { CONFIG_SOURCE, type ConfigSource } from './resolve.js';
export type { ConfigFlags } from './options.js';
export type LoadedConfig = LoadedOf<typeof OPTIONS>;

/** `file:line:col: message` for file problems, `--flag: message` for flag problems (line 0) */
export function formatConfigProblem(p: LoadProblem): string {
  return p.line === 0 ? `${p.file}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message}` : formatProblem(p);
}

function loadWith<T extends OptionTable>(schema: z.ZodType, file: string): { raw?: LoadedOf<T>; problems: LoadProblem[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { problems: [{ code: 'io', file, line: 1, col: 1, message: `cannot read: ${why}`, severity: 'error' }] };
  }
  const parsed = parseYamlText(file, text);
  const problems = [...parsed.problems];
  const { doc, lineCounter } = parsed;
  if (!doc || problems.some((p) => p.severity === 'error')) return { problems };
  // an empty file (or only comments) is an empty config: every default applies
  const data: unknown = doc.contents === null ? {} : doc.toJS();
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    problems.push({ code: 'shape', file, line: 1, col: 1, message: 'a config file is a YAML map of option: value (the option names of the flags, without --)', severity: 'error' });
    return { problems };
  }
  const res = schema.safeParse(data);
  if (!res.success) {
    problems.push(...zodProblems(file, doc, lineCounter, res.error, [], schema));
    return { problems };
  }
  const raw = res.data as LoadedOf<T>;
  const positions: ConfigSource['positions'] = {};
  for (const key of Object.keys(raw)) positions[key] = keyPositionOf(doc, lineCounter, [key]);
  Object.defineProperty(raw, CONFIG_SOURCE, { value: { file: resolve(file), shown: file, positions } satisfies ConfigSource, enumerable: false });
  return { raw, problems };
}

/**
 * Everything derived from one options table: commander options per command, the file schema
 * and its JSON Schema, file loading and resolution. The daemon uses `optionsFrom(OPTIONS)`;
 * a test can pass the table plus an entry of its own.
 */
export function optionsFrom<T extends OptionTable>(table: T) {
  const schema = fileSchemaOf(table);
  return {
    table,
    configSchema: schema,
    jsonSchema: () => jsonSchemaOf(table),
    addTo: (cmd: Command, command: CommandName) => addOptions(cmd, table, command),
    load: (file: string) => loadWith<T>(schema, file),
    resolve: (command: CommandName, raw: LoadedOf<T> | undefined, flags: FlagsOf<T>, env: NodeJS.ProcessEnv = process.env): { config?: ResolvedOf<T>; problems: LoadProblem[] } => {
      const src = raw?.[CONFIG_SOURCE];
      // the file that was loaded is the config file, whether or not its flag came along
      const withConfig = src && (flags as { config?: string }).config === undefined ? { ...flags, config: src.file } : flags;
      return resolveWith(table, command, raw, withConfig, env);
    },
  };
}

export const options = optionsFrom(OPTIONS);

export function loadConfigFile(file: string): { raw?: LoadedConfig; problems: LoadProblem[] } {
  return loadWith<typeof OPTIONS>(configSchema, file);
}

export function resolveConfig(command: CommandName, fileRaw: LoadedConfig | undefined, flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): { config?: ResolvedConfig; problems: LoadProblem[] } {
  return options.resolve(command, fileRaw, flags, env);
}
