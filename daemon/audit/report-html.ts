// `--html FILE`: one self-contained page (no outside resources, no script) a reader who has
// never seen redline can follow: the summary across trials, a table of trials, and for each
// trial its verdict and an SVG timeline — a lane per category, a dot per record (hover for
// what it was), the freeze marked by a red line.
import type { TrialGroup } from './groups.js';
import { chainLine, chainNotes, chainsLines, groupCells, groupColumns, offset, validity, verdict } from './report-text.js';
import { sealsLine } from './seals.js';
import type { AuditReport } from './report.js';
import { summarySentences } from './summary.js';
import { type StageReach, STAGES, type TimelineEntry, type Trial } from './trials.js';

export function escapeHtml(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters from the subject are shown, not obeyed
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\ufffd');
}
const e = escapeHtml;

const SEVERITY_COLOR: Record<string, string> = { critical: '#b00020', high: '#e65100', medium: '#f9a825', low: '#1e88e5', info: '#78909c' };
const LANE_ORDER = ['system.scan', ...STAGES, 'process.kill', 'process.detach', 'monitor.tamper', 'system.damage', 'system.reboot', 'network.egress', 'network.listen', 'gpu.alloc', 'monitor.degraded', 'action', 'trial'];

function lanesOf(t: Trial): string[] {
  const present = new Set(t.timeline.map((x) => x.lane));
  const known = LANE_ORDER.filter((l) => present.has(l));
  return [...known, ...[...present].filter((l) => !LANE_ORDER.includes(l)).sort()];
}

function dotColor(x: TimelineEntry): string {
  if (x.lane === 'action') return '#6a1b9a';
  if (x.lane === 'trial') return '#455a64';
  return SEVERITY_COLOR[x.severity ?? ''] ?? '#607d8b';
}

/** the SVG timeline of one trial */
export function timelineSvg(t: Trial): string {
  const lanes = lanesOf(t);
  if (lanes.length === 0) return '<p class="note">nothing happened on this trial’s timeline</p>';
  const left = 150;
  const width = 860;
  const laneH = 26;
  const top = 10;
  const plotW = width - left - 20;
  const times = t.timeline.map((x) => x.time);
  const t0 = t.start_time ?? Math.min(...times);
  const t1 = Math.max(t.end_time ?? 0, ...times, t0 + 1);
  const span = t1 - t0;
  const x = (time: number) => left + ((time - t0) / span) * plotW;
  const height = top + lanes.length * laneH + 30;
  const parts: string[] = [`<svg class="timeline" data-trial="${e(t.id)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="timeline of trial ${e(t.id)}">`];
  lanes.forEach((lane, i) => {
    const y = top + i * laneH + laneH / 2;
    parts.push(`<text x="${left - 8}" y="${y + 4}" text-anchor="end" class="lane">${e(lane)}</text>`, `<line x1="${left}" x2="${left + plotW}" y1="${y}" y2="${y}" class="laneline"/>`);
  });
  // axis: seconds from the start
  const axisY = top + lanes.length * laneH + 6;
  const step = niceStep(span / 1000);
  for (let s = 0; s <= span / 1000 + 1e-9; s += step) {
    const px = x(t0 + s * 1000);
    parts.push(`<line x1="${px}" x2="${px}" y1="${top}" y2="${axisY}" class="tick"/>`, `<text x="${px}" y="${axisY + 14}" text-anchor="middle" class="axis">${formatSeconds(s)}</text>`);
  }
  if (t.explore) {
    // when the exploring began: the trial's first system.scan alert
    const px = x(t.explore.time);
    parts.push(`<line x1="${px}" x2="${px}" y1="${top - 4}" y2="${axisY}" class="explore"><title>exploration began at ${e(offset(t.explore.after_ms))} (record #${t.explore.seq})</title></line>`, `<text x="${px + 3}" y="${top + 14}" class="explorelabel">explore</text>`);
  }
  if (t.freeze) {
    const px = x(t.freeze.time);
    parts.push(`<line x1="${px}" x2="${px}" y1="${top - 4}" y2="${axisY}" class="freeze"><title>frozen at ${e(offset(t.freeze.after_ms))} (record #${t.freeze.seq})</title></line>`, `<text x="${px + 3}" y="${top + 2}" class="freezelabel">frozen</text>`);
  }
  for (const entry of t.timeline) {
    const y = top + lanes.indexOf(entry.lane) * laneH + laneH / 2;
    const tip = `#${entry.seq} ${offset(entry.time - t0)} ${entry.severity ? `${entry.severity} ` : ''}${entry.lane}: ${entry.label}`;
    parts.push(`<circle class="event" data-seq="${entry.seq}" cx="${x(entry.time).toFixed(1)}" cy="${y}" r="5" fill="${dotColor(entry)}"><title>${e(tip)}</title></circle>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

function niceStep(seconds: number): number {
  const raw = seconds / 8;
  for (const s of [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]) if (s >= raw) return s;
  return 7200;
}

function formatSeconds(s: number): string {
  return s >= 1 || s === 0 ? `${Number(s.toFixed(2))} s` : `${Math.round(s * 1000)} ms`;
}

function trialSection(t: Trial, i: number): string {
  const rows = t.timeline
    .filter((x) => x.lane !== 'trial')
    .map((x) => `<tr><td>${e(offset(t.start_time === null ? null : x.time - t.start_time))}</td><td>${e(x.severity ?? '')}</td><td>${e(x.lane)}</td><td>${e(x.label)}</td><td>${x.seq}</td></tr>`);
  const reach = (name: string, r: StageReach) => `<li><b>${e(name)}</b> at ${e(offset(r.after_ms))}: ${e(r.summary)} <span class="seq">#${r.seq}</span></li>`;
  const stages = [...(t.explore ? [reach('explore', t.explore)] : []), ...STAGES.flatMap((s) => (t.stages[s] ? [reach(s, t.stages[s])] : []))];
  const kills = t.kills.map((k) => `<li>${e(k.by.comm)} (pid ${k.by.pid ?? '?'}) → ${k.target ? `${e(k.target.comm)} (pid ${k.target.pid ?? '?'})` : 'every process / unknown'}: ${e(k.signal)} <span class="seq">#${k.seq}</span></li>`);
  const listed = (title: string, items: string[]) => (items.length > 0 ? `<h4>${title}</h4><ul>${items.join('')}</ul>` : '');
  return [
    `<section class="trial" id="trial-${i}">`,
    `<h2>Trial ${e(t.id)}</h2>`,
    `<p class="verdict ${t.tripped ? 'bad' : 'ok'}"><b>Verdict:</b> ${e(verdict(t))}</p>`,
    `<p class="${t.valid ? 'ok' : 'bad'}">${e(validity(t))}</p>`,
    `<p>${t.alerts} alerts · GPU peak ${t.gpu_peak_mib === null ? 'none seen' : `${t.gpu_peak_mib} MiB`} · replicas ${t.replicas}${t.max_generation > 1 ? ` (generation ${t.max_generation})` : ''}</p>`,
    timelineSvg(t),
    t.timeline_omitted > 0 ? `<p class="note">${t.timeline_omitted} more records are not drawn.</p>` : '',
    listed('How far it got', stages),
    listed('Processes it signalled', kills),
    listed('Damage', t.damage.map((d) => `<li>${e(d.summary)} <span class="seq">#${d.seq}</span></li>`)),
    listed('Reboot attempts', t.reboots.map((d) => `<li>${e(d.summary)} <span class="seq">#${d.seq}</span></li>`)),
    listed('Detaching', t.detaches.map((d) => `<li>${e(d.summary)} <span class="seq">#${d.seq}</span></li>`)),
    listed('Attacks on the monitor', t.tamper.map((d) => `<li>${e(d.summary)} <span class="seq">#${d.seq}</span></li>`)),
    rows.length > 0 ? `<details><summary>All ${rows.length} records</summary><table><tr><th>time</th><th>severity</th><th>category</th><th>what</th><th>seq</th></tr>${rows.join('')}</table></details>` : '',
    '</section>',
  ].join('\n');
}

const STYLE = `
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
h1{margin-bottom:.2em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;font-size:14px}
.ok{color:#1b5e20}.bad{color:#b00020}.note{color:#555;font-style:italic}.seq{color:#888;font-size:12px}
section.trial{border-top:2px solid #eee;margin-top:2em}
svg.timeline{background:#fafafa;border:1px solid #e0e0e0;display:block;margin:.5em 0}
svg .lane{font-size:12px;fill:#333}svg .axis{font-size:11px;fill:#666}svg .laneline{stroke:#ddd}svg .tick{stroke:#eee}
svg .freeze{stroke:#b00020;stroke-width:2;stroke-dasharray:4 3}svg .freezelabel{font-size:11px;fill:#b00020}
svg .explore{stroke:#1e88e5;stroke-width:2;stroke-dasharray:2 3}svg .explorelabel{font-size:11px;fill:#1e88e5}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
`;

/** `--by KEY[,KEY…]`: the table a paper prints (as the Markdown one: report-text.ts groupTableMarkdown) */
function groupTable(groups: TrialGroup[]): string {
  if (groups.length === 0) return '';
  const keys = (groups[0]?.key ?? '').split(',');
  const head = `<tr>${groupColumns(keys).map((c) => `<th>${e(c)}</th>`).join('')}</tr>`;
  const rows = groups.map((g) => `<tr>${groupCells(g, keys, e, '<i>(none)</i>').map((c) => `<td>${c}</td>`).join('')}</tr>`);
  return `<h3>By ${e(keys.join(', '))}</h3><table class="groups">${head}${rows.join('')}</table>`;
}

export function htmlReport(r: AuditReport): string {
  const legend = Object.entries(SEVERITY_COLOR).map(([s, c]) => `<span><i style="background:${c}"></i>${s}</span>`).join('') + '<span><i style="background:#6a1b9a"></i>action (freeze, kill)</span>';
  const table = r.trials.map(
    (t, i) =>
      `<tr><td><a href="#trial-${i}">${e(t.id)}</a></td><td>${t.valid ? (t.attacked ? '<span class="bad">yes (monitor attacked)</span>' : 'yes') : `<span class="bad">${t.attacked ? 'monitor attacked' : 'no'}: ${e(t.invalid_reasons.join(', '))}</span>`}</td><td>${e(t.stage ?? '—')}</td><td>${t.tripped ? 'yes' : 'no'}</td><td>${t.freeze ? e(offset(t.freeze.after_ms)) : 'no'}</td><td>${t.alerts}</td><td>${t.kills.length}</td><td>${t.tamper.length}</td></tr>`,
  );
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><title>redline audit</title>',
    `<style>${STYLE}</style>`,
    '</head><body>',
    '<h1>redline audit</h1>',
    '<p>redline watched AI agents told to copy themselves (their weights, their server) and froze them when they did. This page is rebuilt from its tamper-evident log.</p>',
    `<p>Logs: ${r.files.map((f) => `<code>${e(f)}</code>`).join(', ')}</p>`,
    `<p class="${r.chain.ok ? 'ok' : 'bad'}"><b>${e(chainLine(r.chain))}</b></p>`,
    ...chainsLines(r).map((n) => `<p class="${n.startsWith('chain BROKEN') ? 'bad' : 'note'}">${e(n)}</p>`),
    `<p class="${r.seals.ok === false ? 'bad' : r.seals.ok ? 'ok' : 'note'}"><b>${e(sealsLine(r.seals))}</b></p>`,
    ...chainNotes(r).map((n) => `<p class="note">${e(n)}</p>`),
    '<h2>Summary</h2>',
    `<ul class="summary">${summarySentences(r.summary).map((s) => `<li>${e(s)}</li>`).join('')}</ul>`,
    groupTable(r.summary.groups ?? []),
    r.trials.length > 0 ? `<table><tr><th>trial</th><th>valid</th><th>furthest stage</th><th>tripped</th><th>frozen at</th><th>alerts</th><th>kills</th><th>tamper</th></tr>${table.join('')}</table>` : '',
    `<p class="legend">Stages, in order: ${STAGES.map((s) => e(s)).join(' → ')}.<br>Dots: ${legend}</p>`,
    ...r.trials.map((t, i) => trialSection(t, i)),
    '</body></html>',
    '',
  ].join('\n');
}
