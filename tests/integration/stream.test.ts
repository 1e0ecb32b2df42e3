// The websocket stream and `redline tail` against a real `redline run`: tokens, alerts
// within milliseconds, replay with `since` (every record exactly once), heartbeats with
// the chain head and the last seal, filters, bad clients, 100 clients, and log rotation on
// SIGUSR2 (the old file ends sealed).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCgroupV2Mount, groupPids, removeGroup } from '../../daemon/cgroup.js';
import { sendControl } from '../../daemon/control/client.js';
import { AuditLog } from '../../daemon/outputs/audit-log.js';
import { generateKeyFiles, readPublicKey, sealSignatureProblem } from '../../daemon/outputs/seal.js';
import { monitorSkipReason } from '../helpers/host.js';
import { killBystanders } from '../helpers/procs.js';
import { CLI, type LogRecord, readLog, redline, ROOT, stopRedline, tempDir } from '../helpers/redline.js';
import { connect, type Daemon, startDaemon, type Watcher } from '../helpers/stream.js';

const skip = monitorSkipReason();

async function cleanupDaemon(d: Daemon | undefined): Promise<void> {
  if (!d) return;
  await stopRedline(d);
  d.agent.kill('SIGKILL');
  const group = join(findCgroupV2Mount() ?? '/nonexistent', 'redline', `pid-${d.agent.pid}`);
  for (const pid of groupPids(group)) process.kill(pid, 'SIGKILL');
  const t0 = Date.now();
  while (groupPids(group).length > 0 && Date.now() - t0 < 2000);
  removeGroup(group);
}

describe('the websocket stream', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let d: Daemon;
  const clients: Watcher[] = [];
  const auth = () => ({ authorization: `Bearer ${d.token}` });
  const watch = async (query = '', headers: Record<string, string> = auth()) => {
    const w = await connect(`${d.url}${query}`, headers);
    clients.push(w);
    return w;
  };

  const key = join(tmp.dir, 'seal.key');
  before(async () => {
    generateKeyFiles(key);
    // signed, with a seal at least every second: the heartbeats carry the last one
    d = await startDaemon(tmp.dir, ['--ws-heartbeat', '300', '--sign-key', key, '--seal-interval', '1s']);
  });
  after(async () => {
    for (const c of clients) c.close();
    await cleanupDaemon(d);
    killBystanders();
    tmp.cleanup();
  });

  test('no token, or a wrong one, gets HTTP 401; the header and ?token= are both accepted', async () => {
    await assert.rejects(connect(d.url), { status: 401 });
    await assert.rejects(connect(d.url, { authorization: 'Bearer wrong' }), { status: 401 });
    await assert.rejects(connect(`${d.url}?token=wrong`), { status: 401 });
    await assert.rejects(connect(d.url.replace('/stream', '/other'), auth()), { status: 404 });
    (await watch()).close();
    (await watch(`?token=${encodeURIComponent(d.token)}`, {})).close();
  });

  test('a client receives the alert within milliseconds, exactly as the log has it', async (t) => {
    const w = await watch();
    const logged = await d.provoke();
    await w.waitFor((x) => x.records.some((r) => r.seq === logged.seq));
    const got = w.records.find((r) => r.seq === logged.seq);
    assert.deepEqual(got, logged);
    const at = w.received.find((r) => r.seq === logged.seq)?.at ?? 0;
    t.diagnostic(`alert written → received by the client: ${at - logged.time} ms`);
  });

  test('heartbeats carry the chain head', async () => {
    const w = await watch();
    await w.waitFor((x) => x.heartbeats.length >= 2);
    const head = w.heartbeats.at(-1)?.head as { seq: number; hash: string };
    const last = readLog(d.log).at(-1) as LogRecord;
    assert.ok(head.seq <= last.seq && head.seq >= last.seq - 2, `${JSON.stringify(head)} vs ${last.seq}`);
    assert.equal(readLog(d.log).find((r) => r.seq === head.seq)?.hash, head.hash);
    // and the last seal, which verifies with the public key off the host
    await d.provoke();
    await w.waitFor((x) => x.heartbeats.some((h) => (h.seal as { head_seq?: number } | undefined)?.head_seq !== undefined && (h.seal as { head_seq: number }).head_seq > head.seq), 10_000);
    const seal = w.heartbeats.at(-1)?.seal as Record<string, unknown>;
    assert.equal(sealSignatureProblem(seal, readPublicKey(`${key}.pub`).key), null);
    assert.deepEqual(readLog(d.log).find((r) => r.seq === seal.seq), seal);
  });

  test('a client that disconnects and reconnects with since gets every record exactly once', async () => {
    const first = await watch('?since=0');
    await d.provoke();
    const upTo = readLog(d.log).at(-1)?.seq as number;
    await first.waitFor((x) => x.records.some((r) => r.seq === upTo));
    first.close();
    const resumeAt = (first.records.at(-1)?.seq as number) + 1;
    // records written while it was away
    await d.provoke();
    await d.provoke();
    const second = await watch(`?since=${resumeAt}`);
    await d.provoke(); // and one after it is back
    const end = readLog(d.log).at(-1)?.seq as number;
    await second.waitFor((x) => x.records.some((r) => r.seq === end));
    const seqs = [...first.records, ...second.records].map((r) => r.seq).filter((s) => s <= end);
    assert.deepEqual(seqs, [...new Set(seqs)], 'no record twice');
    assert.deepEqual(seqs, readLog(d.log).map((r) => r.seq).filter((s) => s <= end), 'every record, in order');
  });

  test('filters: by minimum severity, by category, by kind', async () => {
    const critical = await watch('?severity=critical');
    const kill = await watch('?category=process.*');
    const other = await watch('?category=weights.copy&kind=alert');
    const alertsOnly = await watch('?kind=alert');
    const a = await d.provoke();
    await kill.waitFor((x) => x.records.some((r) => r.seq === a.seq));
    await alertsOnly.waitFor((x) => x.records.some((r) => r.seq === a.seq));
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!critical.records.some((r) => r.kind === 'alert'), 'a high alert is below critical');
    assert.ok(!other.records.some((r) => r.seq === a.seq));
    assert.ok(alertsOnly.records.every((r) => r.kind === 'alert'));
    await assert.rejects(connect(`${d.url}?severity=loud`, auth()), { status: 400 });
  });

  test('garbage from a client closes that client and nothing else', async () => {
    const bystanderClient = await watch();
    const binary = await watch();
    binary.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    await binary.waitFor((x) => x.closed !== null);
    assert.equal(binary.closed?.code, 1003);
    const text = await watch();
    text.ws.send('{{{ not json');
    await text.waitFor((x) => x.closed !== null);
    assert.equal(text.closed?.code, 1003);
    const big = await watch();
    big.ws.send('x'.repeat(100_000));
    await big.waitFor((x) => x.closed !== null);
    assert.equal(big.closed?.code, 1009);
    const a = await d.provoke();
    await bystanderClient.waitFor((x) => x.records.some((r) => r.seq === a.seq));
  });

  test('100 clients at once all receive the alert', async (t) => {
    const many = await Promise.all(Array.from({ length: 100 }, () => watch()));
    const a = await d.provoke();
    await Promise.all(many.map((w) => w.waitFor((x) => x.records.some((r) => r.seq === a.seq))));
    const latest = Math.max(...many.map((w) => w.received.find((r) => r.seq === a.seq)?.at ?? 0));
    t.diagnostic(`alert written → the 100th client has it: ${latest - a.time} ms`);
    for (const w of many) w.close();
  });

  test('tail prints the alert a test provokes, and exits 0 on SIGINT', async () => {
    // --heartbeats: its first heartbeat says it is connected (start-up takes seconds on a busy host)
    const tail = spawn(process.execPath, [CLI, 'tail', '--url', d.url, '--token', d.token, '--heartbeats'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    tail.stdout.on('data', (c) => {
      out += c;
    });
    const exited = new Promise<number | null>((r) => tail.on('close', (code) => r(code)));
    try {
      const t1 = Date.now();
      while (!out.includes('"kind":"heartbeat"') && Date.now() - t1 < 30_000) await new Promise((r) => setTimeout(r, 20));
      assert.match(out, /"kind":"heartbeat"/, 'tail never connected');
      const a = await d.provoke();
      const t0 = Date.now();
      while (!out.includes(`"seq":${a.seq},`) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
      const line = out.split('\n').find((l) => l.includes(`"seq":${a.seq},`));
      assert.ok(line, out);
      assert.deepEqual(JSON.parse(line), a);
      tail.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      tail.kill('SIGKILL');
    }
  });

  test('SIGUSR2 reopens the log: the new file continues the chain, and audit verifies both', async () => {
    const old = join(tmp.dir, 'daemon.ndjson.1');
    renameSync(d.log, old);
    d.child.kill('SIGUSR2');
    const t0 = Date.now();
    while (readLog(d.log).length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    const first = readLog(d.log)[0] as LogRecord;
    const lastOld = readLog(old).at(-1) as LogRecord;
    assert.equal(first.phase, 'log-reopened');
    assert.equal(first.prev, lastOld.hash);
    assert.equal(first.seq, lastOld.seq + 1);
    await d.provoke();
    const audit = await redline(['audit', '--pubkey', `${key}.pub`, old, d.log]);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    // the old file ends on a seal: the one made at the rotation, or, when a seal on the timer had
    // just covered everything (nothing was left to seal), that one; audited alone, every record
    // is covered
    assert.equal(lastOld.kind, 'seal');
    assert.ok(lastOld.reason === 'rotation' || lastOld.reason === 'interval', String(lastOld.reason));
    const alone = await redline(['audit', '--json', '--pubkey', `${key}.pub`, old]);
    assert.equal(alone.code, 0, alone.stdout);
    assert.equal(JSON.parse(alone.stdout).seals.first_uncovered, null);
  });
});

describe('a client that never reads', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let d: Daemon | undefined;
  let stalled: Socket | undefined;
  after(async () => {
    stalled?.destroy();
    await cleanupDaemon(d);
    killBystanders();
    tmp.cleanup();
  });

  test('is dropped; meanwhile other clients and the log go on, and the daemon’s memory stays flat', async (t) => {
    // a log of ~100 MB from earlier trials: replaying it to a client that never reads must
    // neither buffer it in memory nor hold anyone up
    const prefill = AuditLog.open(join(tmp.dir, 'daemon.ndjson'));
    const filler = 'x'.repeat(1000);
    for (let i = 0; i < 100_000; i++) prefill.append({ kind: 'event', type: 'filler', i, filler });
    prefill.close();
    d = await startDaemon(tmp.dir);
    const daemon = d;
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    const before = rss();
    const port = Number(new URL(d.url).port);
    const s = createConnection(port, '127.0.0.1');
    stalled = s;
    const closed = new Promise<number>((r) => s.on('close', () => r(Date.now())));
    s.on('error', () => undefined);
    s.write(`GET /stream?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${d.token}\r\n\r\n`);
    s.pause(); // and never read again
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rss());
    }, 100);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const other = await connect(d.url, { authorization: `Bearer ${d.token}` });
      const a = await d.provoke();
      await other.waitFor((x) => x.records.some((r) => r.seq === a.seq), 5000);
      t.diagnostic(`while a client stalls: alert written → another client has it in ${(other.received.find((r) => r.seq === a.seq)?.at ?? 0) - a.time} ms`);
      other.close();
      // dropped: the daemon says so, and the connection is gone when the client reads again
      const t0 = Date.now();
      let dropped = 0;
      while (dropped === 0 && Date.now() - t0 < 30_000) {
        const st = await sendControl(d.socket, { cmd: 'status' });
        dropped = (st.websocket as { dropped: number }).dropped;
        if (dropped === 0) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(dropped, 1, 'the stalled client was never dropped');
      t.diagnostic(`stalled client dropped ${Date.now() - t0} ms later; daemon RSS ${before.toFixed(0)} MB → peak ${peak.toFixed(0)} MB`);
      assert.ok(peak - before < 50, `the daemon grew by ${(peak - before).toFixed(0)} MB for a client that reads nothing`);
      s.resume();
      const closedAt = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
      assert.ok(closedAt > 0, 'the connection was still open');
    } finally {
      clearInterval(sampler);
    }
    // the log went on meanwhile: the provoked alert is in it, after the 100 000 old records
    assert.ok(readLog(d.log).some((r) => r.kind === 'alert' && r.seq > 100_000));
  });
});

describe('tail across a daemon restart', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let a: Daemon | undefined;
  let b: Daemon | undefined;
  after(async () => {
    await cleanupDaemon(a);
    await cleanupDaemon(b);
    killBystanders();
    tmp.cleanup();
  });

  test('--follow reconnects with backoff and resumes after the last record it printed', async () => {
    a = await startDaemon(tmp.dir);
    const port = Number(new URL(a.url).port);
    const tail = spawn(process.execPath, [CLI, 'tail', '--url', a.url, '--token', a.token, '--since', '0', '--follow'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    tail.stdout.on('data', (c) => {
      out += c;
    });
    try {
      await a.provoke();
      a.child.kill('SIGTERM');
      assert.equal((await a.done).code, 0);
      a.agent.kill('SIGKILL'); // it watches the same cue file
      // the same log and port: the chain, and the tail, go on
      b = await startDaemon(tmp.dir, [], port);
      const last = await b.provoke();
      const t0 = Date.now();
      while (!out.includes(`"seq":${last.seq},`) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
      const seqs = out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as LogRecord).seq);
      const logged = readLog(b.log).map((r) => r.seq).filter((s) => s <= last.seq);
      assert.deepEqual(seqs.filter((s) => s <= last.seq), logged);
    } finally {
      tail.kill('SIGKILL');
    }
  });
});
