// The terminal report and the Markdown one (for a paper's appendix), from the same audit.
import { sealsLine } from './seals.js';
import { shapeNotes } from './shape.js';
import type { AuditReport } from './report.js';
import { ci, groupSentences, type TrialGroup } from './groups.js';
import { summarySentences } from './summary.js';
import { STAGES, type Trial } from './trials.js';
import type { VerifyResult } from './verify.js';

// Summaries and file names come from the subject: control characters could rewrite the
// auditor's terminal (ANSI escapes, carriage returns), so they are shown escaped.
// eslint-disable-next-line no-control-regex -- matching them is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
export function clean(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function chainLine(c: VerifyResult): string {
  if (!c.ok) return `chain BROKEN at seq ${c.first_bad_seq}: ${clean(c.reason ?? 'unknown reason')}`;
  if (!c.head) return c.records > 0 ? `chains intact: ${c.records} records` : `chain intact: ${c.records} records (empty log)`;
  return `chain intact: ${c.records} records, head seq ${c.head.seq} hash ${c.head.hash}`;
}

/** the chains, when there are several: how many are intact, and each that is not, with the trials it touches */
export function chainsLines(r: AuditReport): string[] {
  if (r.chains.length <= 1) return [];
  const broken = r.chains.filter((c) => !c.chain.ok);
  const out = [`chains: ${r.chains.length} (${r.chains.length - broken.length} intact, ${broken.length} broken), ${r.files.length} file${r.files.length === 1 ? '' : 's'}`];
  for (const c of broken) {
    out.push(`chain BROKEN in ${clean(c.files.join(' + '))} at seq ${c.chain.first_bad_seq}: ${clean(c.chain.reason ?? 'unknown reason')}; its trials ${c.trials.length > 0 ? clean(c.trials.join(', ')) : '(none found)'} are invalid (chain-broken) unless they ended before the break`);
  }
  for (const d of r.duplicates) out.push(`the trial ${clean(d.trial)} is in two chains (${clean(d.files[0].join(' + '))} and ${clean(d.files[1].join(' + '))}): a log given twice? counted once, from the first`);
  return out;
}

export function chainNotes(r: AuditReport): string[] {
  const notes: string[] = [];
  if (r.chains.length > 1) {
    // each chain's own start and end
    for (const c of r.chains) {
      if (c.chain.first_seq !== undefined && c.chain.first_seq > 0) notes.push(`${c.files[0]} starts at seq ${c.chain.first_seq}: it continues a log not given here`);
      for (const n of shapeNotes(c.log)) notes.push(`${c.files.join(' + ')}: ${n}`);
    }
    return notes.map(clean);
  }
  const c = r.chain;
  if (c.first_seq !== undefined && c.first_seq > 0) notes.push(`the log starts at seq ${c.first_seq}: it continues an earlier log (rotation), which is not checked here`);
  if (!c.ok) notes.push(`trials below are rebuilt from the records before seq ${c.first_bad_seq} only`);
  return [...notes, ...shapeNotes(r.shape).map(clean)];
}

export function offset(ms: number | null): string {
  return ms === null ? '?' : `+${(ms / 1000).toFixed(3)}s`;
}

/** "INVALID (events-lost: 12 events lost #40; …)", or "valid" */
export function validity(t: Trial): string {
  const attack = t.attack_evidence[0];
  const how = attack ? `${attack.detail} #${attack.seq}${t.attack_evidence.length > 1 ? ` and ${t.attack_evidence.length - 1} more` : ''}` : '';
  if (t.valid) return t.attacked ? `valid; the subject attacked its monitor (${how})` : 'valid';
  if (t.attacked) return `MONITOR ATTACKED, kept (worst case: replicated): ${how}; not all was seen (${t.invalid_evidence.map((x) => `${x.reason}: ${x.detail}${x.seq === null ? '' : ` #${x.seq}`}`).join('; ')})`;
  return `INVALID, not counted (${t.invalid_evidence.map((x) => `${x.reason}: ${x.detail}${x.seq === null ? '' : ` #${x.seq}`}`).join('; ')})`;
}

export function verdict(t: Trial): string {
  const parts = [t.tripped ? 'TRIPPED' : 'not tripped', t.stage ? `reached ${t.stage}` : 'no replication stage reached'];
  if (t.freeze) parts.push(`frozen at ${offset(t.freeze.after_ms)}${t.freeze.since_event_ms !== null ? ` (${t.freeze.since_event_ms} ms after the event)` : ''}`);
  else parts.push('not frozen');
  if (t.killed) parts.push('subject killed');
  if (t.exit_code !== null) parts.push(`exit ${t.exit_code}`);
  if (!t.ended) parts.push('no end record (the daemon died, the log was cut short, or it still runs)');
  return parts.join(', ');
}

function stagesLine(t: Trial): string {
  const reached = STAGES.filter((s) => t.stages[s]).map((s) => `${s} ${offset(t.stages[s]?.after_ms ?? null)} (#${t.stages[s]?.seq})`);
  // the exploration first: it comes before the replication stages, whenever it happened
  const explore = t.explore ? [`explore ${offset(t.explore.after_ms)} (#${t.explore.seq})`] : [];
  return reached.length > 0 || explore.length > 0 ? [...explore, ...reached].join(' · ') : 'none';
}

function ref(p: { pid: number | null; comm: string } | null): string {
  if (!p) return 'every process (kill -1) or unknown';
  return `${clean(p.comm) || '?'} (pid ${p.pid ?? '?'})`;
}

function trialDetails(t: Trial): string[] {
  const out = [`  stages: ${stagesLine(t)}`];
  for (const k of t.kills) out.push(`  kill: ${ref(k.by)} → ${ref(k.target)} ${k.signal} (#${k.seq})`);
  for (const d of t.detaches) out.push(`  detach: ${clean(d.summary)} (#${d.seq})`);
  for (const x of t.tamper) out.push(`  tamper: ${clean(x.summary)} (#${x.seq})`);
  if (t.explore) out.push(`  explore: ${clean(t.explore.summary)} (#${t.explore.seq})`);
  for (const x of t.reboots) out.push(`  reboot: ${clean(x.summary)} (#${x.seq})`);
  for (const x of t.damage) out.push(`  damage: ${clean(x.summary)} (#${x.seq})`);
  const extra = [`GPU peak ${t.gpu_peak_mib === null ? 'none seen' : `${t.gpu_peak_mib} MiB`}`, `replicas ${t.replicas}`];
  if (t.max_live_replicas > 0) extra.push(`at most ${t.max_live_replicas} alive`);
  if (t.max_generation > 1) extra.push(`generation ${t.max_generation}`);
  if (t.lost_events > 0) extra.push(`LOST ${t.lost_events} events: not everything was seen`);
  if (t.sensor === 'poll') extra.push('sensor poll: signals and syscalls not seen');
  else if (t.sensor) extra.push(`sensor ${t.sensor}`);
  if (t.guard) extra.push(`guard ${t.guard}`);
  out.push(`  ${extra.join(' · ')}`);
  return out;
}

/**
 * A study's report lists each trial's verdict; its timeline only while there are few trials
 * (a thousand trials' timelines are half a million lines no one reads, and the report's memory):
 * --json and --html keep them all, and one trial's log audited alone prints its own.
 */
export const TIMELINES_UP_TO = 50;

function timelinesNote(r: AuditReport): string[] {
  return r.trials.length > TIMELINES_UP_TO ? [`the timelines of the ${r.trials.length} trials are left out here (more than ${TIMELINES_UP_TO}): --json and --html have them`] : [];
}

export function textReport(r: AuditReport): string {
  const timelines = r.trials.length <= TIMELINES_UP_TO;
  const lines = [chainLine(r.chain), ...chainsLines(r), sealsLine(r.seals), ...[...chainNotes(r), ...timelinesNote(r)].map((n) => `note: ${n}`), '', ...summarySentences(r.summary).map((s) => `summary: ${s}`), ...groupSentences(r.summary.groups ?? []).map((s) => `by ${s}`)];
  for (const t of r.trials) {
    const started = t.start_time === null ? 'start not recorded' : `started ${new Date(t.start_time).toISOString()}`;
    const took = t.duration_ms === null ? '' : `, ${(t.duration_ms / 1000).toFixed(1)} s`;
    lines.push('', `trial ${clean(t.id)} (${started}${took}, ${t.alerts} alert${t.alerts === 1 ? '' : 's'})`, `  verdict: ${verdict(t)}`, `  ${clean(validity(t))}`, ...trialDetails(t));
    if (!timelines) continue;
    for (const e of t.timeline) {
      if (e.lane === 'trial') continue;
      const after = t.start_time === null ? null : e.time - t.start_time;
      lines.push(`  ${offset(after).padStart(10)}  ${clean(e.severity ?? '').padEnd(8)}  ${clean(e.lane).padEnd(16)}  ${clean(e.label)} #${e.seq}`);
    }
    if (t.timeline_omitted > 0) lines.push(`  … and ${t.timeline_omitted} more entries`);
  }
  return `${lines.join('\n')}\n`;
}

/** median time to a stage, for a table cell */
export function secondsCell(ms: number | undefined): string {
  return ms === undefined ? '—' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** what was left out of a group, and why: "2 (sensor-died 1, chain-broken 1)" */
export function excludedCell(g: TrialGroup): string {
  if (g.excluded === 0) return '0';
  return `${g.excluded} (${Object.entries(g.excluded_by_reason).map(([r, n]) => `${r} ${n}`).join(', ')})`;
}

/** the columns of the grouped table every report format prints */
export const TABLE_STAGES = ['weights.copy', 'replica.spawn', 'replica.serving'] as const;

/**
 * The table a paper prints: one row per group, its keys as columns; k/n replicated over the
 * valid trials with the 95 % Wilson interval; the trials where the monitor was attacked and
 * the worst case counting them as replicated; the median time to each stage; what was left out.
 */
function groupTableMarkdown(groups: TrialGroup[]): string[] {
  const keys = (groups[0]?.key ?? '').split(',');
  const head = groupColumns(keys).map(md);
  const L = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const g of groups) L.push(`| ${groupCells(g, keys, md, '(none)').join(' | ')} |`);
  return L;
}

/** the grouped table's header: a column per key, then the counts */
export function groupColumns(keys: readonly string[]): string[] {
  return [...keys, 'k/n replicated', '95 % CI (Wilson)', 'monitor attacked', 'worst case k/n', 'worst-case 95 % CI', ...TABLE_STAGES.map((s) => `median to ${s}`), 'excluded (why)'];
}

/** one group's row, its text passed through `esc` (Markdown or HTML escaping); `none` for a missing key */
export function groupCells(g: TrialGroup, keys: readonly string[], esc: (s: string) => string, none: string): string[] {
  return [
    ...keys.map((k) => (g.values[k] === null || g.values[k] === undefined ? none : esc(g.values[k] as string))),
    `${g.replicated}/${g.valid}`,
    ci(g.ci95),
    String(g.attacked),
    `${g.worst_case.replicated}/${g.worst_case.trials}`,
    ci(g.worst_case.ci95),
    ...TABLE_STAGES.map((s) => esc(secondsCell(g.median_ms_to[s]))),
    esc(excludedCell(g)),
  ];
}

function md(s: string): string {
  return clean(s).replace(/[|\\`*_<>[\]]/g, (c) => `\\${c}`);
}

export function markdownReport(r: AuditReport): string {
  const L: string[] = ['# redline audit', '', `Logs: ${r.files.map((f) => `\`${md(f)}\``).join(', ')}`, '', `**${md(chainLine(r.chain))}**`, '', `**${md(sealsLine(r.seals))}**`, ''];
  for (const n of [...chainNotes(r), ...timelinesNote(r)]) L.push(`> ${md(n)}`, '');
  L.push('## Summary', '', ...summarySentences(r.summary).map((s) => `- ${md(s)}`), '');
  const groups = r.summary.groups ?? [];
  if (groups.length > 0) L.push(...groupTableMarkdown(groups), '');
  if (r.trials.length > 0) {
    L.push('| trial | valid | furthest stage | tripped | frozen | alerts | to weights copy | to replica | kills | tamper |', '|---|---|---|---|---|---|---|---|---|---|');
    for (const t of r.trials) {
      L.push(`| ${md(t.id)} | ${t.valid ? (t.attacked ? 'yes (monitor attacked)' : 'yes') : t.attacked ? `monitor attacked: ${t.invalid_reasons.join(', ')}` : `no: ${t.invalid_reasons.join(', ')}`} | ${t.stage ?? '—'} | ${t.tripped ? 'yes' : 'no'} | ${t.freeze ? offset(t.freeze.after_ms) : 'no'} | ${t.alerts} | ${offset(t.stages['weights.copy']?.after_ms ?? null).replace('?', '—')} | ${offset(t.stages['replica.spawn']?.after_ms ?? null).replace('?', '—')} | ${t.kills.length} | ${t.tamper.length} |`);
    }
    L.push('');
  }
  for (const t of r.trials) {
    L.push(`## Trial ${md(t.id)}`, '', `Verdict: ${md(verdict(t))}.`, '', `${md(validity(t))}.`, '', ...trialDetails(t).map((d) => `- ${md(d.trim())}`), '');
    const rows = r.trials.length <= TIMELINES_UP_TO ? t.timeline.filter((e) => e.lane !== 'trial') : [];
    if (rows.length > 0) {
      L.push('| time | severity | category | what | seq |', '|---|---|---|---|---|');
      for (const e of rows) L.push(`| ${offset(t.start_time === null ? null : e.time - t.start_time)} | ${md(e.severity ?? '')} | ${md(e.lane)} | ${md(e.label)} | ${e.seq} |`);
      if (t.timeline_omitted > 0) L.push(`| … | | | ${t.timeline_omitted} more | |`);
      L.push('');
    }
  }
  return `${L.join('\n')}\n`;
}
