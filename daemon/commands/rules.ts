// `redline rules check PATH…`: the daemon's own loader, nothing else.
// `redline rules test`: a rule pack over recorded events (below).
import { readLogLines, UnreadableLogError } from '../audit/read.js';
import { shippedRulesDir } from '../config/schema.js';
import { loadRules } from '../engine/load.js';
import { asObserved, type ObservedEvent, replay } from '../engine/replay.js';
import { formatProblem } from '../events.js';
import { describeStarved, starvedByPoll } from '../sensors/feeds.js';

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
  // what each rule is fed by decides whether the poll sensor (no root) can fire it
  const starved = starvedByPoll(res.ruleset.rules);
  if (starved.length > 0) {
    const inactive = starved.filter((r) => r.inactive).length;
    out.write(`with the poll sensor: ${inactive} inactive, ${starved.length - inactive} partly fed\n${describeStarved(starved).map((l) => `  ${l}\n`).join('')}`);
  }
  return 0;
}

export interface RulesTestOptions {
  rules?: string[];
  trial?: string;
  json?: boolean;
}

interface FiredLine {
  at: number;
  trial: string | null;
  rule: string;
  category: string;
  severity: string;
  summary: string;
  pid: number;
}

const key = (f: { trial: string | null; rule: string; summary: string }) => `${f.trial ?? ''}\u0000${f.rule}\u0000${f.summary}`;

/** multiset difference a − b by key */
function minus<T extends { trial: string | null; rule: string; summary: string }>(a: T[], b: { trial: string | null; rule: string; summary: string }[]): T[] {
  const left = new Map<string, number>();
  for (const x of b) left.set(key(x), (left.get(key(x)) ?? 0) + 1);
  return a.filter((x) => {
    const n = left.get(key(x)) ?? 0;
    if (n === 0) return true;
    left.set(key(x), n - 1);
    return false;
  });
}

/**
 * `redline rules test [--rules PATH…] INPUT…`: runs a rule pack over the events a log
 * recorded (`exec`/`run --record-events`) or over a fixture file of the same objects, and
 * prints what would have fired; for a log, compared with what its live run fired.
 */
export async function rulesTestCommand(inputs: string[], opts: RulesTestOptions, out = process.stdout, err = process.stderr): Promise<number> {
  const loaded = loadRules(opts.rules && opts.rules.length > 0 ? opts.rules : [shippedRulesDir()]);
  for (const p of loaded.errors) err.write(`${formatProblem(p)}\n`);
  if (!loaded.ruleset) return 2;
  const events: { at: number; trial: string | null; observed: ObservedEvent }[] = [];
  const live: FiredLine[] = [];
  try {
    for await (const line of readLogLines(inputs)) {
      if (!line.parsed) continue;
      const r = line.value as Record<string, unknown>;
      const trial = typeof r.trial === 'string' ? r.trial : null;
      if (opts.trial !== undefined && trial !== opts.trial) continue;
      const at = typeof r.seq === 'number' ? r.seq : line.line;
      const observed = asObserved(r);
      if (observed) events.push({ at, trial, observed });
      else if (r.kind === 'alert' && typeof r.rule === 'string' && !r.rule.startsWith('redline.')) {
        live.push({ at, trial, rule: r.rule, category: String(r.category), severity: String(r.severity), summary: String(r.summary), pid: Number(r.pid) });
      }
    }
  } catch (e) {
    if (!(e instanceof UnreadableLogError)) throw e;
    err.write(`redline rules test: ${e.message}\n`);
    return 2;
  }
  if (events.length === 0) {
    err.write(`redline rules test: no recorded events in ${inputs.join(', ')}${opts.trial ? ` for trial ${opts.trial}` : ''}: record them with exec/run --record-events, or give a fixture of {event, proc} objects\n`);
    return 2;
  }
  const fired: FiredLine[] = replay(loaded.ruleset, events).map((f) => ({ at: f.at, trial: f.trial, rule: f.match.rule.id, category: f.match.rule.category, severity: f.match.rule.severity, summary: f.match.summary, pid: f.pid }));
  const onlyNow = minus(fired, live);
  const onlyLive = minus(live, fired);
  if (opts.json) {
    out.write(`${JSON.stringify({ rules: loaded.ruleset.rules.length, events: events.length, fired, live: live.length, only_now: onlyNow, only_live: onlyLive }, null, 2)}\n`);
    return 0;
  }
  out.write(`${loaded.ruleset.rules.length} rules over ${events.length} recorded events: ${fired.length} alert${fired.length === 1 ? '' : 's'}\n`);
  for (const f of fired) out.write(`  #${f.at}${f.trial ? ` [${f.trial}]` : ''} ${f.severity.toUpperCase()} ${f.category} ${f.rule}: ${f.summary}\n`);
  if (live.length > 0 || onlyLive.length > 0) {
    out.write(`the live run fired ${live.length}: ${fired.length - onlyNow.length} the same, ${onlyNow.length} only now, ${onlyLive.length} only then\n`);
    for (const f of onlyNow) out.write(`  only now: ${f.rule}: ${f.summary}\n`);
    for (const f of onlyLive) out.write(`  only then: ${f.rule}: ${f.summary}\n`);
  }
  return 0;
}
