// `redline audit LOG… [--json] [--html FILE]`: verify the chain, rebuild trials, print
// them. Exit codes (CONTRACT.md): 0 chain intact, 4 broken or edited, 2 unreadable.
//
// Trials are rebuilt only from the intact prefix of the chain: records after the first
// bad one could say anything, and an audit must not present them as evidence.

import { writeFile } from 'node:fs/promises';
import { readLogLines, UnreadableLogError } from '../audit/read.js';
import type { Trial } from '../audit/trials.js';
import { TrialBuilder } from '../audit/trials.js';
import { ChainVerifier, type VerifyResult } from '../audit/verify.js';

export interface AuditOptions {
  json?: boolean;
  html?: string;
}

interface TextSink {
  write(chunk: string): unknown;
}

export const EXIT_INTACT = 0;
export const EXIT_UNREADABLE = 2;
export const EXIT_BROKEN = 4;

// Summaries and file names come from the subject: control characters could rewrite the
// auditor's terminal (ANSI escapes, carriage returns), so they are shown escaped.
// eslint-disable-next-line no-control-regex -- matching them is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
function clean(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function tripped(t: Trial): boolean {
  return t.tripped ?? t.timeline.some((a) => a.severity === 'high' || a.severity === 'critical');
}

function chainLine(c: VerifyResult): string {
  if (!c.ok) return `chain BROKEN at seq ${c.first_bad_seq}: ${clean(c.reason ?? 'unknown reason')}`;
  if (!c.head) return `chain intact: ${c.records} records (empty log)`;
  return `chain intact: ${c.records} records, head seq ${c.head.seq} hash ${c.head.hash}`;
}

function chainNotes(c: VerifyResult): string[] {
  const notes: string[] = [];
  if (c.first_seq !== undefined && c.first_seq > 0) {
    notes.push(`the log starts at seq ${c.first_seq}: it continues an earlier log (rotation), which is not checked here`);
  }
  if (!c.ok) notes.push(`trials below are rebuilt from the records before seq ${c.first_bad_seq} only`);
  return notes;
}

function offset(time: number, base: number): string {
  return `+${((time - base) / 1000).toFixed(3)}s`;
}

function verdict(t: Trial): string {
  const parts = [
    tripped(t) ? 'TRIPPED' : 'not tripped',
    t.stage ? `reached ${t.stage}` : 'no replication stage reached',
    t.frozen ? 'frozen' : 'not frozen',
  ];
  if (t.exit_code !== undefined) parts.push(`exit ${t.exit_code}`);
  if (t.end_time === null) parts.push('no end record (still running, or the log was cut short)');
  return parts.join(', ');
}

function baseTime(t: Trial): number {
  return t.start_time ?? t.timeline[0]?.time ?? 0;
}

function humanReport(chain: VerifyResult, trials: Trial[]): string {
  const lines = [chainLine(chain), ...chainNotes(chain).map((n) => `note: ${n}`)];
  if (trials.length === 0) lines.push('no trials in this log');
  for (const t of trials) {
    const started = t.start_time === null ? 'start not recorded' : `started ${new Date(t.start_time).toISOString()}`;
    lines.push('', `trial ${clean(t.id)} (${started}, ${t.alerts} alert${t.alerts === 1 ? '' : 's'})`);
    const base = baseTime(t);
    for (const a of t.timeline) {
      const pid = a.pid === null ? '' : ` (pid ${a.pid})`;
      lines.push(
        `  ${offset(a.time, base).padStart(10)}  ${clean(a.severity).padEnd(8)}  ${clean(a.category).padEnd(16)}  ${clean(a.summary)}${pid}`,
      );
    }
    lines.push(`  verdict: ${verdict(t)}`);
  }
  return `${lines.join('\n')}\n`;
}

function htmlReport(files: string[], chain: VerifyResult, trials: Trial[]): string {
  const e = (s: string) => escapeHtml(s);
  const body: string[] = [
    `<h1>redline audit</h1>`,
    `<p>${files.map((f) => `<code>${e(f)}</code>`).join(', ')}</p>`,
    `<p class="${chain.ok ? 'ok' : 'bad'}">${e(chainLine(chain))}</p>`,
    ...chainNotes(chain).map((n) => `<p class="note">${e(n)}</p>`),
  ];
  if (trials.length === 0) body.push('<p>no trials in this log</p>');
  for (const t of trials) {
    const base = baseTime(t);
    const rows = t.timeline.map(
      (a) =>
        `<tr><td>${e(offset(a.time, base))}</td><td>${e(a.severity)}</td><td>${e(a.category)}</td>` +
        `<td>${e(a.summary)}</td><td>${a.pid ?? ''}</td><td>${a.seq}</td></tr>`,
    );
    body.push(
      `<h2>trial ${e(t.id)}</h2>`,
      '<table><tr><th>time</th><th>severity</th><th>category</th><th>summary</th><th>pid</th><th>seq</th></tr>',
      ...rows,
      '</table>',
      `<p><b>verdict:</b> ${e(verdict(t))}</p>`,
    );
  }
  return [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"><title>redline audit</title>',
    '<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}',
    'td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.ok{color:#060}.bad{color:#b00;font-weight:bold}</style>',
    '</head><body>',
    ...body,
    '</body></html>',
    '',
  ].join('\n');
}

function jsonReport(chain: VerifyResult, trials: Trial[]): string {
  return `${JSON.stringify({ chain, trials }, null, 2)}\n`;
}

export async function auditCommand(
  files: string[],
  opts: AuditOptions,
  out: TextSink = process.stdout,
  err: TextSink = process.stderr,
): Promise<number> {
  if (files.length === 0) {
    err.write('usage: redline audit LOG… [--json] [--html FILE]\n');
    return EXIT_UNREADABLE;
  }
  const verifier = new ChainVerifier();
  const builder = new TrialBuilder();
  try {
    for await (const line of readLogLines(files)) {
      const rec = verifier.push(line);
      if (rec) builder.add(rec);
    }
  } catch (e) {
    if (!(e instanceof UnreadableLogError)) throw e;
    err.write(`redline audit: ${e.message}\n`);
    return EXIT_UNREADABLE;
  }
  const chain = verifier.result();
  const trials = builder.trials();

  out.write(opts.json ? jsonReport(chain, trials) : humanReport(chain, trials));
  if (opts.html) {
    try {
      await writeFile(opts.html, htmlReport(files, chain, trials));
    } catch (e) {
      err.write(`redline audit: cannot write ${opts.html}: ${e instanceof Error ? e.message : String(e)}\n`);
      return EXIT_UNREADABLE;
    }
  }
  return chain.ok ? EXIT_INTACT : EXIT_BROKEN;
}
