// `redline audit` on a log that a real trial wrote: intact → 0 with the trial's verdict;
// an edited, a deleted or a swapped line → 4 naming the first bad seq.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { canonical } from '../../daemon/outputs/chain.js';
import { monitorSkipReason } from '../helpers/host.js';
import { bystander, killBystanders } from '../helpers/procs.js';
import { redline, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('audit of a real trial log', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const log = join(tmp.dir, 'trial.ndjson');
  let lines: string[] = [];

  before(async () => {
    const victim = bystander();
    const script = join(tmp.dir, 'agent.sh');
    writeFileSync(script, `#!/bin/sh\nkill -STOP ${victim}\nsleep 1\n`);
    chmodSync(script, 0o755);
    const r = await redline(['exec', '--log', log, '--trial', 'trial-one', '--meta', 'model=A', '--meta', 'seed=3', '--', script]);
    assert.equal(r.code, 3, r.stderr);
    lines = readFileSync(log, 'utf8').trim().split('\n');
  });
  after(() => {
    killBystanders();
    tmp.cleanup();
  });

  test('intact: exit 0, one frozen trial with its alerts', async () => {
    const r = await redline(['audit', '--json', log]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { chain: { ok: boolean; records: number; first_bad_seq: null }; trials: { id: string; frozen: boolean; alerts: number; stage: null }[] };
    assert.deepEqual(out.chain, { ...out.chain, ok: true, records: lines.length, first_bad_seq: null });
    assert.equal(out.trials.length, 1);
    assert.equal(out.trials[0]?.id, 'trial-one');
    assert.equal(out.trials[0]?.frozen, true);
    assert.equal(out.trials[0]?.alerts, 1);
    assert.equal(out.trials[0]?.stage, null, 'a kill is no replication stage');
  });

  test('exec --meta: the metadata in the start record, and the trial grouped by it', async () => {
    const start = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.kind === 'trial' && r.phase === 'start');
    assert.deepEqual(start?.meta, { model: 'A', seed: '3' });
    const r = await redline(['audit', '--json', '--by', 'model', log]);
    const groups = (JSON.parse(r.stdout) as { summary: { groups: { value: string; trials: number; replicated: number }[] } }).summary.groups;
    assert.deepEqual(groups.map((g) => [g.value, g.trials, g.replicated]), [['A', 1, 0]]);
  });

  const tamper = async (name: string, edit: (l: string[]) => string[]) => {
    const path = join(tmp.dir, `${name}.ndjson`);
    writeFileSync(path, `${edit([...lines]).join('\n')}\n`);
    return redline(['audit', path]);
  };

  test('an edited alert summary: exit 4 at that seq', async () => {
    const i = lines.findIndex((l) => l.includes('"kind":"alert"'));
    const r = await tamper('edited', (l) => {
      l[i] = (l[i] as string).replace(/"summary":"[^"]*"/, '"summary":"nothing happened"');
      return l;
    });
    assert.equal(r.code, 4);
    assert.match(r.stdout + r.stderr, new RegExp(`seq ${i}\\b`));
  });

  test('a deleted freeze record: exit 4 at that seq', async () => {
    const i = lines.findIndex((l) => l.includes('"action":"freeze"'));
    const r = await tamper('deleted', (l) => l.filter((_, j) => j !== i));
    assert.equal(r.code, 4);
    assert.match(r.stdout + r.stderr, new RegExp(`seq ${i}\\b`));
  });

  test('an inserted record, even with a well-formed chain link to its predecessor: exit 4 at its place', async () => {
    const i = lines.findIndex((l) => l.includes('"kind":"alert"'));
    const r = await tamper('inserted', (l) => {
      const prev = JSON.parse(l[i - 1] as string) as { seq: number; hash: string; time: number };
      // a forger's record: correct seq and prev, its own hash over its contents
      const forged = { seq: prev.seq + 1, time: prev.time, kind: 'daemon', phase: 'note', note: 'all fine', prev: prev.hash };
      const hash = createHash('sha256').update(canonical(forged)).digest('hex');
      l.splice(i, 0, JSON.stringify({ ...forged, hash }));
      return l;
    });
    assert.equal(r.code, 4);
    // the forged record itself verifies; the genuine one after it no longer links
    assert.match(r.stdout + r.stderr, new RegExp(`seq ${i + 1}\\b`));
    const json = await redline(['audit', '--json', join(tmp.dir, 'inserted.ndjson')]);
    assert.equal(JSON.parse(json.stdout).chain.first_bad_seq, i + 1);
  });

  test('two swapped lines: exit 4 at the first', async () => {
    const r = await tamper('swapped', (l) => {
      [l[3], l[4]] = [l[4] as string, l[3] as string];
      return l;
    });
    assert.equal(r.code, 4);
    assert.match(r.stdout + r.stderr, /seq 3\b/);
  });
});
