import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auditCommand } from '../../daemon/commands/audit.js';
import { AuditLog } from '../../daemon/outputs/audit-log.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'redline-audit-cmd-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function sink() {
  const chunks: string[] = [];
  return { chunks, write: (s: string) => chunks.push(s), text: () => chunks.join('') };
}

async function run(files: string[], opts: { json?: boolean; html?: string } = {}) {
  const out = sink();
  const err = sink();
  const code = await auditCommand(files, opts, out, err);
  return { code, out: out.text(), err: err.text() };
}

const alert = (trial: string, category: string, severity: string, summary: string, pid = 100) => ({
  kind: 'alert',
  trial,
  rule: `rule.${category}`,
  category,
  severity,
  summary,
  pid,
});

let logFile = '';
let recordCount = 0;
before(() => {
  logFile = path.join(root, 'trials.ndjson');
  const log = AuditLog.open(logFile);
  const t0 = 1_700_000_000_000;
  const recs = [
    { kind: 'daemon', event: 'start', time: t0 },
    { kind: 'trial', trial: 't1', phase: 'start', time: t0 + 10 },
    alert('t1', 'weights.read', 'medium', 'read model.safetensors'),
    // Furthest stage wins, not the latest alert.
    alert('t1', 'replica.spawn', 'critical', 'started a second server'),
    alert('t1', 'weights.copy', 'high', 'copied <script>alert(1)</script> \u001b[2Jcleared'),
    { kind: 'action', trial: 't1', action: 'freeze', ok: true, latency_ms: 4 },
    { kind: 'trial', trial: 't1', phase: 'end', tripped: true, exit_code: 3 },
    { kind: 'trial', trial: 't2', phase: 'start' },
    alert('t2', 'gpu.alloc', 'low', 'took GPU memory'),
    { kind: 'action', trial: 't2', action: 'freeze', ok: false, latency_ms: 0 },
    { kind: 'trial', trial: 't2', phase: 'end', tripped: false, exit_code: 0 },
    { kind: 'trial', trial: 't3', phase: 'start' },
  ];
  for (const r of recs) log.append(r);
  log.close();
  recordCount = recs.length;
});

function tamperedCopy(k: number): string {
  const lines = fs.readFileSync(logFile, 'utf8').trimEnd().split('\n');
  const rec = JSON.parse(lines[k] ?? '');
  rec.severity = 'info';
  lines[k] = JSON.stringify(rec);
  const file = path.join(root, `tampered-${k}.ndjson`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('redline audit', () => {
  it('--json: intact chain, trials with stage, frozen and alert count; exit 0', async () => {
    const { code, out } = await run([logFile], { json: true });
    assert.equal(code, 0);
    const report = JSON.parse(out);
    assert.deepEqual(
      { ok: report.chain.ok, records: report.chain.records, first_bad_seq: report.chain.first_bad_seq },
      { ok: true, records: recordCount, first_bad_seq: null },
    );
    const summary = report.trials.map((t: Record<string, unknown>) => ({
      id: t.id,
      stage: t.stage,
      frozen: t.frozen,
      alerts: t.alerts,
    }));
    assert.deepEqual(summary, [
      { id: 't1', stage: 'replica.spawn', frozen: true, alerts: 3 },
      { id: 't2', stage: null, frozen: false, alerts: 1 },
      { id: 't3', stage: null, frozen: false, alerts: 0 },
    ]);
    assert.equal(report.trials[0].exit_code, 3);
  });

  it('prints the chain head, each trial timeline and its verdict', async () => {
    const { code, out } = await run([logFile]);
    assert.equal(code, 0);
    assert.match(out, new RegExp(`^chain intact: ${recordCount} records, head seq ${recordCount - 1} hash [0-9a-f]{64}$`, 'm'));
    assert.match(out, /trial t1 .*3 alerts/);
    assert.match(out, /critical\s+replica\.spawn\s+started a second server #\d+/);
    assert.match(out, /verdict: TRIPPED, reached replica\.spawn, frozen at \+[\d.]+s.*exit 3/);
    assert.match(out, /verdict: not tripped, no replication stage reached, not frozen, exit 0/);
    assert.match(out, /trial t3[\s\S]*no end record/);
    assert.ok(!out.includes('\u001b'), 'terminal escapes from the subject are not passed through');
  });

  it('exits 4 naming the first bad seq when a record was edited', async () => {
    const file = tamperedCopy(4);
    const human = await run([file]);
    assert.equal(human.code, 4);
    assert.match(human.out, /^chain BROKEN at seq 4: /);
    const { code, out } = await run([file], { json: true });
    assert.equal(code, 4);
    const report = JSON.parse(out);
    assert.equal(report.chain.ok, false);
    assert.equal(report.chain.first_bad_seq, 4);
    // Only the intact prefix counts as evidence: t1's copy alert (seq 4) and later are out.
    assert.equal(report.trials[0].alerts, 2);
  });

  it('exits 2 when a log cannot be read, naming it', async () => {
    const missing = path.join(root, 'nope.ndjson');
    const r = await run([logFile, missing], { json: true });
    assert.equal(r.code, 2);
    assert.match(r.err, /nope\.ndjson/);
    const empty = path.join(root, 'no-logs-here');
    fs.mkdirSync(empty, { recursive: true });
    const r2 = await run([empty]);
    assert.equal(r2.code, 2);
    assert.match(r2.err, /no-logs-here: the folder holds no \*\.ndjson log/);
    assert.equal((await run([])).code, 2);
  });

  it('--html writes a self-contained page with the same content, escaped', async () => {
    const html = path.join(root, 'report.html');
    const { code } = await run([logFile], { html });
    assert.equal(code, 0);
    const page = fs.readFileSync(html, 'utf8');
    assert.match(page, /chain intact/);
    assert.match(page, /Trial t1/);
    assert.match(page, /Verdict:<\/b> TRIPPED/);
    assert.ok(page.includes('copied &#60;script&#62;'));
    assert.ok(!page.includes('<script>'), 'text from the log cannot inject markup');
    assert.ok(!/<link|src=/.test(page), 'no external resources');
  });
});
