// Signed seals: keygen's files, the seals the log writer appends (when, over what, with what
// promise), and what audit --pubkey makes of logs that are signed, unsigned, signed with
// another key, written on by a daemon without the key, or cut short.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { auditCommand } from '../../daemon/commands/audit.js';
import { keygenCommand } from '../../daemon/commands/keygen.js';
import { AuditLog } from '../../daemon/outputs/audit-log.js';
import { generateKeyFiles, readPublicKey, readSigningKey, sealSignatureProblem } from '../../daemon/outputs/seal.js';

const root = mkdtempSync(join(tmpdir(), 'redline-test-seals-'));
after(() => rmSync(root, { recursive: true, force: true }));

const sink = () => {
  const chunks: string[] = [];
  return { write: (s: string) => chunks.push(s), text: () => chunks.join('') };
};
async function audit(files: string[], pubkey?: string) {
  const out = sink();
  const err = sink();
  const code = await auditCommand(files, { json: true, ...(pubkey ? { pubkey } : {}) }, out, err);
  return { code, report: code === 2 ? null : (JSON.parse(out.text()) as { seals: Record<string, unknown>; chain: { ok: boolean } }), err: err.text() };
}
const records = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown> & { seq: number; kind: string });

let n = 0;
function keyPair(): string {
  const file = join(root, `k${n++}`);
  generateKeyFiles(file);
  return file;
}
function signedLog(key: string, everyRecords = 5): { file: string; log: AuditLog } {
  const file = join(root, `log${n++}.ndjson`);
  return { file, log: AuditLog.open(file, { seal: { key: readSigningKey(key), everyRecords, everyMs: 60_000 } }) };
}

describe('redline keygen', () => {
  test('writes the private key 0600 and FILE.pub, prints the key id, and never overwrites', () => {
    const file = join(root, 'gen');
    const out = sink();
    assert.equal(keygenCommand(file, out, sink()), 0);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(existsSync(`${file}.pub`));
    const id = /key id ([0-9a-f]{16})/.exec(out.text())?.[1];
    assert.equal(id, readSigningKey(file).keyId);
    assert.equal(id, readPublicKey(`${file}.pub`).keyId);
    const before = readFileSync(file, 'utf8');
    const err = sink();
    assert.equal(keygenCommand(file, sink(), err), 2);
    assert.match(err.text(), /exists: redline keygen never overwrites a key/);
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  test('a key others can read, or no key at all, is refused with the reason', () => {
    const file = keyPair();
    chmodSync(file, 0o644);
    assert.throws(() => readSigningKey(file), /others can read it \(mode 644\); chmod 600 it/);
    assert.throws(() => readSigningKey(`${file}.pub`), /not a private key|others can read/);
    const junk = join(root, 'junk');
    writeFileSync(junk, 'not a key', { mode: 0o600 });
    assert.throws(() => readSigningKey(junk), /not a private key in PEM/);
  });
});

describe('the seals a signed log gets', () => {
  test('after the daemon start, every N records, after each trial end and at close; each verifies and covers the record before it', () => {
    const key = keyPair();
    const { file, log } = signedLog(key, 5);
    log.append({ kind: 'daemon', phase: 'start' });
    log.append({ kind: 'trial', phase: 'start', trial: 't1' });
    for (let i = 0; i < 12; i++) log.append({ kind: 'event', i, trial: 't1' });
    log.append({ kind: 'trial', phase: 'end', trial: 't1' });
    log.append({ kind: 'event', i: 99 });
    log.close();
    const recs = records(file);
    const seals = recs.filter((r) => r.kind === 'seal');
    assert.deepEqual(seals.map((s) => s.reason), ['start', 'records', 'records', 'trial-end', 'stop']);
    const pub = readPublicKey(`${key}.pub`).key;
    for (const s of seals) {
      assert.equal(sealSignatureProblem(s, pub), null);
      const before = recs.find((r) => r.seq === s.seq - 1);
      assert.equal(s.head_seq, before?.seq);
      assert.equal(s.head_hash, before?.hash);
      assert.equal(s.next_within, 5);
    }
    // a milestone's seal comes right after it
    const end = recs.findIndex((r) => r.kind === 'trial' && r.phase === 'end');
    assert.equal(recs[end + 1]?.kind, 'seal');
    // never more than N records between two seals
    const at = seals.map((s) => s.seq);
    for (let i = 1; i < at.length; i++) assert.ok((at[i] as number) - (at[i - 1] as number) - 1 <= 5);
    // a changed field fails the signature
    assert.match(String(sealSignatureProblem({ ...seals[1], head_seq: 3 }, pub)), /does not verify/);
  });

  test('a listener that writes as a record goes out does not come between a trial end and its seal', () => {
    const key = keyPair();
    const { file, log } = signedLog(key, 1000);
    let once = false;
    log.on('record', (s) => {
      if (!once && s.record.kind === 'trial') {
        once = true;
        log.append({ kind: 'event', note: 'written by a listener' });
      }
    });
    log.append({ kind: 'trial', phase: 'end', trial: 't' });
    log.close();
    assert.deepEqual(records(file).map((r) => r.kind), ['trial', 'seal', 'event', 'seal']);
  });

  test('a seal every interval while records come, none while nothing does', async () => {
    const key = keyPair();
    const file = join(root, 'timed.ndjson');
    const log = AuditLog.open(file, { seal: { key: readSigningKey(key), everyRecords: 1000, everyMs: 100 } });
    log.append({ kind: 'event', i: 1 });
    await new Promise((r) => setTimeout(r, 350));
    const count = () => records(file).filter((r) => r.kind === 'seal').length;
    assert.equal(count(), 1, 'one seal for the one record; no seals over nothing');
    log.append({ kind: 'event', i: 2 });
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(count(), 2);
    log.close();
  });
});

describe('audit --pubkey', () => {
  const key = keyPair();
  const pub = `${key}.pub`;

  test('a signed log verifies; without --pubkey the report says its seals were not checked', async () => {
    const { file, log } = signedLog(key);
    log.append({ kind: 'daemon', phase: 'start' });
    for (let i = 0; i < 7; i++) log.append({ kind: 'event', i });
    log.append({ kind: 'daemon', phase: 'stop' });
    log.close();
    const r = await audit([file], pub);
    assert.equal(r.code, 0);
    assert.equal(r.report?.seals.ok, true);
    assert.equal(r.report?.seals.first_uncovered, null);
    const plain = await audit([file]);
    assert.equal(plain.report?.seals.checked, false);
    // after the start, after five records, after the stop
    assert.equal(plain.report?.seals.count, 3);
  });

  test('records after the last seal, fewer than its promise, are an unsealed tail and not an error', async () => {
    const { file, log } = signedLog(key, 5);
    log.append({ kind: 'daemon', phase: 'start' });
    for (let i = 0; i < 3; i++) log.append({ kind: 'event', i });
    // the daemon dies here: no close, no stop
    const r = await audit([file], pub);
    assert.equal(r.code, 0);
    assert.deepEqual(r.report?.seals.unsealed_tail, { from: 2, to: 4, records: 3 });
  });

  test('an unsigned log, a log signed with another key, a bad key file', async () => {
    const unsigned = join(root, 'unsigned.ndjson');
    const u = AuditLog.open(unsigned);
    u.append({ kind: 'daemon', phase: 'start' });
    u.close();
    const r = await audit([unsigned], pub);
    assert.equal(r.code, 4);
    assert.match(String(r.report?.seals.problem), /carries no seal/);
    const other = keyPair();
    const { file, log } = signedLog(other);
    log.append({ kind: 'daemon', phase: 'start' });
    log.close();
    const o = await audit([file], pub);
    assert.equal(o.code, 4);
    assert.match(String(o.report?.seals.problem), /no seal by key [0-9a-f]{16} verifies/);
    assert.equal(o.report?.seals.other_keys, 1);
    const junk = join(root, 'junk.pub');
    writeFileSync(junk, 'ssh-ed25519 AAAA…');
    const bad = await audit([file], junk);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--pubkey .*junk\.pub: not a public key in PEM/);
  });

  test('a daemon without the key writing on after a signed one: its records are not covered (exit 4)', async () => {
    const { file, log } = signedLog(key, 100);
    log.append({ kind: 'daemon', phase: 'start' });
    log.append({ kind: 'daemon', phase: 'stop' });
    log.close();
    const later = AuditLog.open(file);
    later.append({ kind: 'daemon', phase: 'start' });
    later.append({ kind: 'event', i: 1 });
    later.close();
    const r = await audit([file], pub);
    assert.equal(r.code, 4);
    assert.equal(r.report?.seals.first_uncovered, 4);
    assert.match(String(r.report?.seals.problem), /no seal follows the daemon start at seq 4/);
  });
});
