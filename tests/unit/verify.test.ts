import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readLogs, UnreadableLogError } from '../../daemon/audit/read.js';
import { verifyChain } from '../../daemon/audit/verify.js';
import { AuditLog } from '../../daemon/outputs/audit-log.js';
import { Chain } from '../../daemon/outputs/chain.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'redline-verify-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const tmp = (name = 'audit.ndjson') => path.join(root, `case-${n++}`, name);

// A real log of 8 records (seq 0..7), written by the daemon's own writer.
let original: string[] = [];
before(() => {
  const file = tmp();
  const log = AuditLog.open(file);
  log.append({ kind: 'daemon', event: 'start' });
  for (let i = 1; i < 8; i++) log.append({ kind: 'event', trial: 't1', i, summary: `step ${i}` });
  log.close();
  original = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
});

async function verifyLines(lines: string[]) {
  const file = tmp();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return verifyChain(await readLogs([file]));
}

function editLine(lines: string[], k: number, edit: (r: Record<string, unknown>) => void): string[] {
  const copy = [...lines];
  const rec = JSON.parse(copy[k] ?? '');
  edit(rec);
  copy[k] = JSON.stringify(rec);
  return copy;
}

describe('verifyChain', () => {
  it('accepts an intact log and reports its head', async () => {
    const v = await verifyLines(original);
    assert.equal(v.ok, true);
    assert.equal(v.records, 8);
    assert.equal(v.first_bad_seq, null);
    assert.equal(v.head?.seq, 7);
    assert.equal(v.head?.hash, JSON.parse(original[7] ?? '').hash);
  });

  it('names the edited record', async () => {
    const v = await verifyLines(
      editLine(original, 4, (r) => {
        r.summary = 'nothing happened';
      }),
    );
    assert.equal(v.ok, false);
    assert.equal(v.first_bad_seq, 4);
    assert.match(v.reason ?? '', /edited/);
  });

  it('names a deleted record', async () => {
    const v = await verifyLines(original.filter((_, i) => i !== 3));
    assert.equal(v.first_bad_seq, 3);
    assert.match(v.reason ?? '', /expected seq 3/);
  });

  it('names the first of two swapped records', async () => {
    const swapped = [...original];
    [swapped[5], swapped[6]] = [swapped[6] ?? '', swapped[5] ?? ''];
    const v = await verifyLines(swapped);
    assert.equal(v.first_bad_seq, 5);
  });

  it('names the position of a line that is not JSON', async () => {
    const v = await verifyLines([...original.slice(0, 6), 'rm -rf /var/log/redline', ...original.slice(6)]);
    assert.equal(v.first_bad_seq, 6);
    assert.match(v.reason ?? '', /not JSON/);
    assert.deepEqual(v.bad_at?.line, 7);
  });

  it('names seq 0 when the first line is replaced or preceded by garbage', async () => {
    assert.equal((await verifyLines(['garbage', ...original.slice(1)])).first_bad_seq, 0);
    assert.equal((await verifyLines(['garbage', ...original])).first_bad_seq, 0);
  });

  it('catches an edit whose hash was recomputed, at the next record', async () => {
    const chain = new Chain();
    const recs = [chain.seal({ kind: 'daemon' }), chain.seal({ kind: 'alert', severity: 'critical' }), chain.seal({ kind: 'event' })];
    const forged = new Chain({ seq: 0, hash: recs[0]?.hash ?? '' }).seal({ kind: 'alert', severity: 'info', time: recs[1]?.time });
    const v = await verifyLines([recs[0], forged, recs[2]].map((r) => JSON.stringify(r)));
    assert.equal(v.first_bad_seq, 2);
  });

  it('rejects records without the contract fields even when correctly hashed', async () => {
    const chain = new Chain();
    const lines = [chain.seal({ kind: 'daemon' }), chain.seal({ kind: 'bogus' })].map((r) => JSON.stringify(r));
    const v = await verifyLines(lines);
    assert.equal(v.first_bad_seq, 1);
    assert.match(v.reason ?? '', /kind/);
  });

  it('accepts a rotated file that continues an earlier log, and says where it starts', async () => {
    const v = await verifyLines(original.slice(3));
    assert.equal(v.ok, true, v.reason);
    assert.equal(v.first_seq, 3);
    assert.equal(v.records, 5);
  });

  it('rejects a seq 0 that does not follow genesis', async () => {
    const chain = new Chain({ seq: -1, hash: '1'.repeat(64) });
    const v = await verifyLines([JSON.stringify(chain.seal({ kind: 'daemon' }))]);
    assert.equal(v.ok, false);
    assert.equal(v.first_bad_seq, 0);
  });

  it('checks files given in order as one chain', async () => {
    const a = tmp('a.ndjson');
    const b = tmp('b.ndjson');
    for (const [f, part] of [
      [a, original.slice(0, 4)],
      [b, original.slice(4)],
    ] as const) {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, `${part.join('\n')}\n`);
    }
    assert.equal(verifyChain(await readLogs([a, b])).ok, true);
    const reversed = verifyChain(await readLogs([b, a]));
    assert.equal(reversed.ok, false);
    assert.equal(reversed.first_bad_seq, 8);
  });
});

describe('readLogs', () => {
  it('reports an unreadable file as such, naming it', async () => {
    const missing = path.join(root, 'missing.ndjson');
    await assert.rejects(readLogs([missing]), (e: unknown) => e instanceof UnreadableLogError && e.message.includes('missing.ndjson'));
    await assert.rejects(readLogs([root]), UnreadableLogError);
  });
});
