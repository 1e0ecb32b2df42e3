import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseLine, readLogs } from '../../daemon/audit/read.js';
import { verifyChain } from '../../daemon/audit/verify.js';
import { AuditLog, type AuditRecord } from '../../daemon/outputs/audit-log.js';
import { GENESIS, hashOf } from '../../daemon/outputs/chain.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'redline-audit-log-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const tmpFile = () => path.join(root, `case-${n++}`, 'logs', 'audit.ndjson');

const fileLines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

function enospc(): Error {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
}

/** an injected sink that fails while `failing` is set */
function flakySink() {
  const sink = {
    failing: false,
    lines: [] as string[],
    write(line: string) {
      if (sink.failing) throw enospc();
      sink.lines.push(line);
    },
  };
  return sink;
}

describe('AuditLog', () => {
  it('writes each record as one line holding exactly its fields, before append returns', () => {
    const file = tmpFile();
    const log = AuditLog.open(file);
    try {
      const tricky = {
        kind: 'snapshot',
        err: { message: 'boom' },
        level: 'x',
        deep: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } },
        procs: Array.from({ length: 300 }, (_, i) => ({ pid: i })),
        dropped: undefined,
        count: 12n,
        time: 1700000000000.75,
      };
      const recs: AuditRecord[] = [log.append({ kind: 'daemon', pid: 4242 }).record, log.append(tricky).record];
      const lines = fileLines(file);
      assert.equal(lines.length, 2, 'written synchronously, one line each');
      for (const [i, line] of lines.entries()) {
        const parsed = JSON.parse(line);
        assert.deepEqual(recs[i], parsed);
        assert.equal(hashOf(parsed), parsed.hash, 'the hash covers what is on disk');
      }
      const [daemon, snap] = lines.map((l) => JSON.parse(l));
      assert.equal(daemon.pid, 4242, "pino's own pid must not replace the acting pid");
      assert.equal(daemon.hostname, undefined);
      assert.equal(daemon.msg, undefined);
      assert.equal(daemon.level, undefined);
      assert.deepEqual(snap.err, { message: 'boom' });
      assert.equal(snap.procs.length, 300);
      assert.equal(snap.deep.a.b.c.d.e.f.g, 1);
      assert.equal(snap.count, '12');
      assert.equal(snap.time, 1700000000000);
      assert.equal(snap.prev, daemon.hash);
    } finally {
      log.close();
    }
  });

  it('starts a new file at seq 0 after genesis', () => {
    const log = AuditLog.open(tmpFile());
    assert.deepEqual(log.head(), { seq: -1, hash: GENESIS });
    const r = log.append({ kind: 'daemon' });
    log.close();
    assert.equal(r.seq, 0);
    assert.equal(r.record.prev, GENESIS);
  });

  it('continues the chain of an existing log across restarts', async () => {
    const file = tmpFile();
    const first = AuditLog.open(file);
    first.append({ kind: 'daemon' });
    const last = first.append({ kind: 'event' });
    first.close();

    const second = AuditLog.open(file);
    assert.deepEqual(second.head(), { seq: last.seq, hash: last.hash });
    const next = second.append({ kind: 'daemon' });
    second.close();
    assert.equal(next.seq, 2);
    assert.equal(next.record.prev, last.hash);
    const v = verifyChain(await readLogs([file]));
    assert.equal(v.ok, true, v.reason);
    assert.equal(v.records, 3);
  });

  it('starts a new line after a record torn by a crash, so audit shows exactly that record as bad', async () => {
    const file = tmpFile();
    const first = AuditLog.open(file);
    first.append({ kind: 'daemon' });
    first.append({ kind: 'event' });
    first.close();
    fs.appendFileSync(file, '{"seq":2,"time":1,"ki');

    const second = AuditLog.open(file);
    const r = second.append({ kind: 'daemon' });
    second.close();
    assert.equal(r.seq, 2, 'resumes after the last parseable record');
    const lines = fileLines(file);
    assert.equal(lines.length, 4);
    assert.deepEqual(JSON.parse(lines[3] ?? ''), r.record);
    const v = verifyChain(await readLogs([file]));
    assert.equal(v.ok, false);
    assert.equal(v.first_bad_seq, 2);
  });

  it('keeps records in order while writes fail and writes them all once they succeed', async () => {
    const sink = flakySink();
    const log = AuditLog.open(tmpFile(), { write: sink.write });
    const errors: Error[] = [];
    log.on('error', (e) => errors.push(e));
    try {
      log.append({ kind: 'daemon' });
      sink.failing = true;
      const during = [log.append({ kind: 'alert', n: 1 }), log.append({ kind: 'alert', n: 2 })];
      assert.deepEqual(
        during.map((r) => r.seq),
        [1, 2],
        'seq is assigned even when the write fails',
      );
      assert.equal(log.pendingCount(), 2);
      assert.equal(sink.lines.length, 1);
      assert.equal(errors.length, 1, 'one outage, said once');
      assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOSPC');

      sink.failing = false;
      log.append({ kind: 'alert', n: 3 });
      assert.equal(log.pendingCount(), 0);
      const written = sink.lines.map((l) => JSON.parse(l));
      assert.deepEqual(
        written.map((r) => r.seq),
        [0, 1, 2, 3],
      );
      assert.deepEqual(written[1], during[0]?.record);
      const v = verifyChain(sink.lines.map((l, i) => parseLine('sink', i + 1, l.trimEnd())));
      assert.equal(v.ok, true, v.reason);
    } finally {
      log.close();
    }
  });

  it('retries pending records on its own, without a new append', async () => {
    const sink = flakySink();
    const log = AuditLog.open(tmpFile(), { write: sink.write, retryMs: 10 });
    log.on('error', () => {});
    try {
      sink.failing = true;
      log.append({ kind: 'alert' });
      sink.failing = false;
      const deadline = Date.now() + 2000;
      while (log.pendingCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(log.pendingCount(), 0);
      assert.equal(sink.lines.length, 1);
    } finally {
      log.close();
    }
  });

  it('never throws on a real full disk (/dev/full), with or without error listeners', (t) => {
    if (!fs.existsSync('/dev/full')) {
      t.skip('no /dev/full on this host');
      return;
    }
    const log = AuditLog.open('/dev/full');
    try {
      assert.doesNotThrow(() => log.append({ kind: 'daemon' }));
      log.on('error', () => {});
      assert.doesNotThrow(() => log.append({ kind: 'alert' }));
      assert.equal(log.pendingCount(), 2);
      assert.equal(log.head().seq, 1);
      assert.equal(log.flush(), false);
    } finally {
      log.close();
    }
  });

  it("does not loop when an 'error' listener logs the failure itself", () => {
    const sink = flakySink();
    const log = AuditLog.open(tmpFile(), { write: sink.write });
    let calls = 0;
    log.on('error', () => {
      calls++;
      log.append({ kind: 'alert', category: 'monitor.degraded' });
    });
    sink.failing = true;
    log.append({ kind: 'alert' });
    log.close();
    assert.equal(calls, 1);
    assert.equal(log.pendingCount(), 2);
  });

  it("emits 'record' for each record once written, in order, isolating a throwing listener", () => {
    const sink = flakySink();
    const log = AuditLog.open(tmpFile(), { write: sink.write });
    const seen: number[] = [];
    const errors: Error[] = [];
    log.on('error', (e) => errors.push(e));
    log.on('record', () => {
      throw new Error('broken output');
    });
    log.on('record', (r) => seen.push(r.seq));
    try {
      assert.doesNotThrow(() => log.append({ kind: 'daemon' }));
      sink.failing = true;
      log.append({ kind: 'alert' });
      assert.deepEqual(seen, [0], 'not emitted while the record is pending');
      sink.failing = false;
      assert.equal(log.flush(), true);
      assert.deepEqual(seen, [0, 1]);
      assert.ok(errors.some((e) => e.message === 'broken output'));
    } finally {
      log.close();
    }
  });

  it('reopens the path after rotation and continues the chain in the new file', async () => {
    const file = tmpFile();
    const rotated = `${file}.1`;
    const log = AuditLog.open(file);
    log.append({ kind: 'daemon' });
    log.append({ kind: 'event' });
    fs.renameSync(file, rotated);
    log.reopen();
    const r = log.append({ kind: 'event' });
    log.close();
    assert.equal(r.seq, 2);
    assert.equal(fileLines(file).length, 1);
    const both = verifyChain(await readLogs([rotated, file]));
    assert.equal(both.ok, true, both.reason);
    assert.equal(both.records, 3);
    const newOnly = verifyChain(await readLogs([file]));
    assert.equal(newOnly.ok, true, 'a rotated file on its own is a continuation');
    assert.equal(newOnly.first_seq, 2);
  });

  it('keeps the log from the subject: 0600 whatever the umask, after rotation and for a file left 0644', () => {
    const mode = (f: string) => fs.statSync(f).mode & 0o777;
    const old = process.umask(0);
    try {
      const file = tmpFile();
      const log = AuditLog.open(file);
      log.append({ kind: 'daemon' });
      assert.equal(mode(file), 0o600, 'a new log');
      fs.renameSync(file, `${file}.1`);
      log.reopen();
      log.append({ kind: 'event' });
      log.close();
      assert.equal(mode(file), 0o600, 'the file made anew after rotation');
      const loose = tmpFile();
      fs.mkdirSync(path.dirname(loose), { recursive: true });
      fs.writeFileSync(loose, '', { mode: 0o644 });
      AuditLog.open(loose).close();
      assert.equal(mode(loose), 0o600, 'a file an older version left readable');
    } finally {
      process.umask(old);
    }
  });

  it('with a group named, the log is 0640 and that group\'s', { skip: process.getuid?.() === 0 ? false : 'needs root to give the file to another group' }, () => {
    const file = tmpFile();
    const log = AuditLog.open(file, { group: 4242 });
    log.append({ kind: 'daemon' });
    log.close();
    const st = fs.statSync(file);
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.gid, 4242);
  });

  it('refuses to open a path it cannot create, saying which', () => {
    const blocker = path.join(root, 'not-a-dir');
    fs.writeFileSync(blocker, '');
    assert.throws(() => AuditLog.open(path.join(blocker, 'audit.ndjson')), /not-a-dir/);
  });
});
