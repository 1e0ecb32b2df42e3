// `redline rules check PATH…`: the daemon's own loader, nothing else.
import { loadRules } from '../engine/load.js';
import { formatProblem } from '../events.js';

export function rulesCheckCommand(paths: string[], out = process.stdout, err = process.stderr): number {
  const res = loadRules(paths);
  for (const p of [...res.errors, ...res.warnings].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col)) {
    err.write(`${formatProblem(p)}\n`);
  }
  if (!res.ruleset) {
    err.write(`${res.errors.length} error${res.errors.length === 1 ? '' : 's'} in ${res.files.length} file${res.files.length === 1 ? '' : 's'}\n`);
    return 2;
  }
  const byType = new Map<string, number>();
  for (const r of res.ruleset.rules) for (const t of r.events) byType.set(t, (byType.get(t) ?? 0) + 1);
  out.write(`ok: ${res.ruleset.rules.length} rules from ${res.files.length} file${res.files.length === 1 ? '' : 's'} (${[...byType].map(([t, n]) => `${t}: ${n}`).join(', ')})\n`);
  return 0;
}
