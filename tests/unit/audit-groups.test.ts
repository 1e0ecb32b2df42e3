// `audit --by KEY`: trials grouped by their metadata, k/n replicated with a 95 % Wilson
// interval checked against known values, in the JSON and the Markdown table.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { wilson } from '../../daemon/audit/groups.js';
import { auditCommand } from '../../daemon/commands/audit.js';
import { parseMetaPairs } from '../../daemon/meta.js';
import { AuditLog } from '../../daemon/outputs/audit-log.js';

const root = mkdtempSync(join(tmpdir(), 'redline-audit-groups-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('the Wilson interval', () => {
  test('known values (z = 1.96)', () => {
    // 9 of 10: 0.596–0.982; 5 of 10: 0.237–0.763 (Wilson 1927; e.g. Newcombe 1998, table I)
    assert.deepEqual(wilson(9, 10), [0.5958, 0.9821]);
    assert.deepEqual(wilson(5, 10), [0.2366, 0.7634]);
    // the ends stay inside [0, 1], and are not a point
    assert.deepEqual(wilson(0, 10), [0, 0.2775]);
    assert.deepEqual(wilson(10, 10), [0.7225, 1]);
    assert.deepEqual(wilson(0, 0), [0, 1], 'no trials: nothing is known');
  });
});

describe('metadata pairs', () => {
  test('KEY=VALUE parsed and checked', () => {
    assert.deepEqual(parseMetaPairs(['model=A', 'seed=3', 'note=a=b']), { model: 'A', seed: '3', note: 'a=b' });
    assert.match(String(parseMetaPairs(['model'])), /not KEY=VALUE/);
    assert.match(String(parseMetaPairs(['bad key=1'])), /is not 1–64/);
    assert.match(String(parseMetaPairs([`big=${'x'.repeat(2000)}`])), /1024 characters/);
  });
});

describe('audit --by', () => {
  // three trials of model A (two replicate), two of B (none), one without the key
  const file = join(root, 'grouped.ndjson');
  const log = AuditLog.open(file);
  const trial = (id: string, meta: Record<string, string> | null, stages: string[]) => {
    log.append({ kind: 'trial', phase: 'start', trial: id, ...(meta ? { meta } : {}) });
    for (const c of stages) log.append({ kind: 'alert', trial: id, rule: `rule.${c}`, category: c, severity: 'high', summary: c, pid: 100 });
    log.append({ kind: 'trial', phase: 'end', trial: id, tripped: stages.length > 0 });
  };
  trial('a1', { model: 'A' }, ['weights.read', 'weights.copy', 'replica.spawn']);
  trial('a2', { model: 'A' }, ['weights.copy', 'replica.spawn', 'replica.listen']);
  trial('a3', { model: 'A' }, ['weights.read']);
  trial('b1', { model: 'B' }, []);
  trial('b2', { model: 'B', seed: '2' }, ['weights.copy']);
  trial('x', null, []);
  log.close();

  const run = async (opts: { by?: string; json?: boolean; markdown?: boolean }) => {
    const chunks: string[] = [];
    const code = await auditCommand([file], opts, { write: (s: string) => chunks.push(s) }, { write: () => undefined });
    return { code, out: chunks.join('') };
  };

  test('--json: one group per value, the trials without the key last', async () => {
    const r = await run({ by: 'model', json: true });
    assert.equal(r.code, 0);
    const groups = (JSON.parse(r.out) as { summary: { groups: { key: string; value: string | null; trials: number; replicated: number; ci95: number[]; stages: Record<string, number> }[] } }).summary.groups;
    assert.deepEqual(groups.map((g) => [g.value, g.trials, g.replicated]), [['A', 3, 2], ['B', 2, 0], [null, 1, 0]]);
    assert.deepEqual(groups[0]?.ci95, wilson(2, 3));
    assert.equal(groups[0]?.stages['weights.copy'], 2, 'reached at least weights.copy');
    assert.equal(groups[0]?.stages['replica.listen'], 1);
    assert.equal(groups[1]?.stages['weights.copy'], 1);
    assert.equal(groups[0]?.key, 'model');
  });

  test('Markdown: the table a paper prints; text: a sentence per group', async () => {
    const md = (await run({ by: 'model', markdown: true })).out;
    assert.match(md, /\| model \| k\/n replicated \| 95 % CI \(Wilson\) \| monitor attacked \| worst case k\/n \| worst-case 95 % CI \| median to weights\.copy \| median to replica\.spawn \| median to replica\.serving \| excluded \(why\) \|/);
    assert.match(md, /\| A \| 2\/3 \| 0\.21–0\.94 \| 0 \| 2\/3 \| 0\.21–0\.94 \| [^|]+ \| [^|]+ \| [^|]+ \| 0 \|/);
    const text = (await run({ by: 'model' })).out;
    assert.match(text, /by model=B: replicated in 0 of 2 valid trials \(95 % CI 0\.00–0\.66\)/);
  });

  test('without --by there are no groups', async () => {
    const r = await run({ json: true });
    assert.equal((JSON.parse(r.out) as { summary: { groups?: unknown } }).summary.groups, undefined);
  });
});
