// The one loader: `rules check`, daemon start and SIGHUP reload all call loadRules.
import type { LoadProblem } from '../events.js';
import { compile } from './compiler.js';
import { readRules } from './reader.js';
import { Ruleset } from './ruleset.js';

export interface LoadResult {
  /** null when any error was found: a partial ruleset is never used */
  ruleset: Ruleset | null;
  files: string[];
  errors: LoadProblem[];
  warnings: LoadProblem[];
}

export function loadRules(paths: readonly string[]): LoadResult {
  const read = readRules(paths);
  const compiled = compile(read.items);
  const all = [...read.problems, ...compiled.problems];
  const errors = all.filter((p) => p.severity === 'error');
  const warnings = all.filter((p) => p.severity === 'warning');
  if (read.files.length === 0 && errors.length === 0) {
    errors.push({ code: 'io', file: paths.join(', ') || '(none)', line: 1, col: 1, message: 'no rule files found', severity: 'error' });
  }
  return { ruleset: errors.length === 0 ? new Ruleset(compiled.rules) : null, files: read.files, errors, warnings };
}
