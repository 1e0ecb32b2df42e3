// `redline audit` over many files: each trial's own log is a chain of its own, rotated
// segments join in any argument order, a folder or a quoted glob is read whole, one broken
// chain hides no other's trials, and a log given twice is counted once. Logs written by the
// daemon's own writer (AuditLog), rotation by its own reopen.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { auditCommand } from '../../daemon/commands/audit.js';
import { AuditLog } from '../../daemon/outputs/audit-log.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'redline-audit-chains-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function sink() {
  const chunks: string[] = [];
  return { write: (s: string) => chunks.push(s), text: () => chunks.join('') };
}

interface Json {
  chain: { ok: boolean; reason?: string };
  chains: { files: string[]; chain: { ok: boolean; first_bad_seq: number | null }; trials: string[] }[];
  duplicates: { trial: string }[];
  summary: { trials: number; valid: number; groups?: { value: string; valid: number; replicated: number; ci95: [number, number]; excluded: number; excluded_by_reason: Record<string, number> }[] };
  trials: { id: string; valid: boolean; invalid_reasons: string[]; meta: Record<string, string> }[];
}

async function audit(files: string[], by?: string): Promise<{ code: number; json: Json; err: string }> {
  const out = sink();
  const err = sink();
  const code = await auditCommand(files, { json: true, ...(by ? { by } : {}) }, out, err);
  return { code, json: code === 2 ? ({} as Json) : (JSON.parse(out.text()) as Json), err: err.text() };
}

let clock = 1_790_000_000_000;
/** one trial as `redline exec` logs it: daemon start, trial start (with its model), alerts, end, stop */
function trialRecords(log: AuditLog, id: string, model: string, replicated: boolean): void {
  log.append({ kind: 'daemon', phase: 'start', time: clock++, sensor: 'ebpf' });
  log.append({ kind: 'trial', phase: 'start', trial: id, time: clock++, meta: { model } });
  log.append({ kind: 'alert', trial: id, time: clock++, rule: 'weights-read', category: 'weights.read', severity: 'medium', summary: 'read', pid: 10 });
  if (replicated) log.append({ kind: 'alert', trial: id, time: clock++, rule: 'replica-spawn', category: 'replica.spawn', severity: 'critical', summary: 'replica', pid: 11 });
  log.append({ kind: 'trial', phase: 'end', trial: id, time: clock++, tripped: replicated, exit_code: replicated ? 3 : 0, reason: 'finished' });
  log.append({ kind: 'daemon', phase: 'stop', time: clock++, reason: 'trial ended' });
}

function writeTrial(file: string, id: string, model: string, replicated: boolean): void {
  const log = AuditLog.open(file);
  trialRecords(log, id, model, replicated);
  log.close();
}

/** model A: 7 of 10 replicated; B: 2 of 10; C: 0 of 10 */
const PLAN: [string, number][] = [['A', 7], ['B', 2], ['C', 0]];
const dir = path.join(root, 'study');
const files: string[] = [];

before(() => {
  fs.mkdirSync(dir);
  for (const [model, k] of PLAN) {
    for (let i = 0; i < 10; i++) {
      const f = path.join(dir, `trial-${model}-${i}.ndjson`);
      writeTrial(f, `t-${model}-${i}`, model, i < k);
      files.push(f);
    }
  }
});

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('audit: many trial logs', () => {
  test('30 logs in shuffled order, as a folder, and as a quoted glob: 30 chains, every trial once, k/n and the Wilson interval per model', async () => {
    const expected = { A: [7, [0.3968, 0.8922]], B: [2, [0.0567, 0.5098]], C: [0, [0, 0.2775]] };
    for (const input of [shuffled(files, 7), shuffled(files, 99), [dir], [path.join(dir, 'trial-*.ndjson')]]) {
      const { code, json } = await audit(input, 'model');
      assert.equal(code, 0);
      assert.equal(json.chain.ok, true);
      assert.equal(json.chains.length, 30);
      assert.equal(json.summary.trials, 30);
      assert.equal(new Set(json.trials.map((t) => t.id)).size, 30);
      const groups = Object.fromEntries((json.summary.groups ?? []).map((g) => [g.value, [g.replicated, g.ci95]]));
      assert.deepEqual(groups, expected);
    }
  });

  test('one file edited: only its chain breaks, its trial is invalid (chain-broken), the others stay in the table; exit 4', async () => {
    const edited = path.join(root, 'edited');
    fs.cpSync(dir, edited, { recursive: true });
    const victim = path.join(edited, 'trial-A-0.ndjson');
    // the replica alert rewritten as a read, and its hash recomputed so that only the link to the next record breaks
    const lines = fs.readFileSync(victim, 'utf8').trimEnd().split('\n');
    const idx = lines.findIndex((l) => l.includes('replica.spawn'));
    const rec = JSON.parse(lines[idx] as string) as Record<string, unknown>;
    const { hashOf } = await import('../../daemon/outputs/chain.js');
    rec.category = 'weights.read';
    rec.hash = hashOf(rec);
    lines[idx] = JSON.stringify(rec);
    fs.writeFileSync(victim, `${lines.join('\n')}\n`);
    const { code, json } = await audit([edited], 'model');
    assert.equal(code, 4);
    assert.equal(json.chain.ok, false);
    const broken = json.chains.filter((c) => !c.chain.ok);
    assert.equal(broken.length, 1);
    assert.deepEqual(broken[0]?.files, [victim]);
    assert.deepEqual(broken[0]?.trials, ['t-A-0']);
    const t = json.trials.find((x) => x.id === 't-A-0');
    assert.deepEqual(t?.invalid_reasons, ['chain-broken']);
    assert.equal(json.trials.filter((x) => x.valid).length, 29);
    const a = json.summary.groups?.find((g) => g.value === 'A');
    assert.deepEqual([a?.valid, a?.replicated, a?.excluded, a?.excluded_by_reason], [9, 6, 1, { 'chain-broken': 1 }]);
  });

  test('a rotated log given as two files, in either order, is one chain', async () => {
    const rot = path.join(root, 'rotated');
    fs.mkdirSync(rot);
    const live = path.join(rot, 'audit.ndjson');
    const log = AuditLog.open(live);
    trialRecords(log, 'r-1', 'A', true);
    // logrotate: the file moves aside, the daemon reopens its path (SIGUSR2) and the chain goes on
    fs.renameSync(live, path.join(rot, 'audit.ndjson.1'));
    const before = log.head();
    log.reopen();
    log.append({ kind: 'daemon', phase: 'log-reopened', continues: before, time: clock++ });
    trialRecords(log, 'r-2', 'A', false);
    log.close();
    for (const order of [[live, path.join(rot, 'audit.ndjson.1')], [path.join(rot, 'audit.ndjson.1'), live], [rot]]) {
      const { code, json } = await audit(order);
      assert.equal(code, 0, JSON.stringify(json.chain));
      assert.equal(json.chains.length, 1);
      assert.deepEqual(json.chains[0]?.files, [path.join(rot, 'audit.ndjson.1'), live]);
      assert.deepEqual(json.trials.map((t) => [t.id, t.valid]), [['r-1', true], ['r-2', true]]);
    }
    // the newer segment alone: it continues a log not given (its trials are whole)
    const alone = await audit([live]);
    assert.equal(alone.code, 0);
    assert.deepEqual(alone.json.trials.map((t) => [t.id, t.valid]), [['r-2', true]]);
  });

  test('a log copied twice: the trial is reported, counted once', async () => {
    const copy = path.join(root, 'copy-of-A-1.ndjson');
    fs.copyFileSync(path.join(dir, 'trial-A-1.ndjson'), copy);
    const { code, json } = await audit([dir, copy], 'model');
    assert.equal(code, 0);
    assert.deepEqual(json.duplicates.map((d) => d.trial), ['t-A-1']);
    assert.equal(json.summary.trials, 30);
    assert.equal(json.summary.groups?.find((g) => g.value === 'A')?.valid, 10);
  });

  test('a glob that matches nothing and a folder with no log: exit 2 naming them', async () => {
    const none = await audit([path.join(dir, 'nothing-*.ndjson')]);
    assert.equal(none.code, 2);
    assert.match(none.err, /nothing-\*\.ndjson: no file matches this pattern/);
  });
});
