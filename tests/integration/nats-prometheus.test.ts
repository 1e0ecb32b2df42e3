// Many hosts, one view, on engines a lab already runs: a real `nats-server -js` and a real
// Prometheus against a live `redline run`. NATS down at the daemon's start, then up; killed
// while an alert is raised, then back: the stream holds every record of the log exactly once,
// in order, and `audit --nats` verifies the chain from it alone. Prometheus scrapes /metrics
// and answers for redline_alerts_total{category="process.kill"}. And what the user must fix
// (a metrics port taken, a stream with other subjects, refused credentials) stops the command
// with the reason.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'nats';
import { findCgroupV2Mount, groupPids, removeGroup } from '../../daemon/cgroup.js';
import { natsRecords } from '../../daemon/outputs/nats-read.js';
import { findExecutable } from '../../daemon/sensors/ebpf/host.js';
import { monitorSkipReason } from '../helpers/host.js';
import { killBystanders } from '../helpers/procs.js';
import { CLI, type LogRecord, readLog, redline, ROOT, stopRedline, tempDir } from '../helpers/redline.js';
import { type Daemon, freePort, startDaemon } from '../helpers/stream.js';

const NATS = findExecutable('nats-server');
const PROMETHEUS = findExecutable('prometheus');
const skip = monitorSkipReason() ?? (NATS ? null : 'needs nats-server (apt-get install -y nats-server)');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, f: () => T | Promise<T>, ms = 30_000): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** a nats-server with JetStream, its store in `dir` (kept across restarts) */
function natsServer(port: number, dir: string, extra: string[] = []): ChildProcess {
  return spawn(NATS as string, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(dir, 'js'), ...extra], { stdio: 'ignore' });
}
async function natsUp(port: number): Promise<void> {
  await until(`nats-server on ${port}`, async () => {
    try {
      const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 500 });
      await nc.close();
      return true;
    } catch {
      return false;
    }
  });
}
async function stopChild(c: ChildProcess | undefined, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  c.kill(sig);
  await Promise.race([gone, sleep(5000)]);
}

describe('NATS JetStream and Prometheus with a live daemon', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let d: Daemon | undefined;
  let nats: ChildProcess | undefined;
  let prom: ChildProcess | undefined;
  let tail: ChildProcess | undefined;
  let natsPort = 0;
  let metricsPort = 0;
  const url = () => `nats://127.0.0.1:${natsPort}`;
  const host = hostname();

  before(async () => {
    natsPort = await freePort();
    metricsPort = await freePort();
    // NATS is not there yet when the daemon starts
    d = await startDaemon(tmp.dir, ['--nats', url(), '--metrics', `127.0.0.1:${metricsPort}`]);
  });
  after(async () => {
    await stopChild(tail);
    if (d) {
      await stopRedline(d);
      d.agent.kill('SIGKILL');
      const group = join(findCgroupV2Mount() ?? '/nonexistent', 'redline', `pid-${d.agent.pid}`);
      for (const pid of groupPids(group)) process.kill(pid, 'SIGKILL');
      removeGroup(group);
    }
    await stopChild(prom);
    await stopChild(nats);
    killBystanders();
    tmp.cleanup();
  });

  test('NATS unreachable at start: the daemon runs, says so (monitor.degraded), and spools the records', async () => {
    const dd = d as Daemon;
    const alert = readLog(dd.log).find((r) => r.kind === 'alert' && r.rule === 'redline.nats-degraded');
    assert.ok(alert, 'a monitor.degraded alert says NATS is away');
    assert.equal(alert.category, 'monitor.degraded');
    assert.match(String(alert.summary), /unreachable at start.*spooled/);
    assert.ok(statSync(`${dd.log}.nats-spool`).size > 0, 'records wait in the spool beside the log');
  });

  test('NATS comes up: the spool goes out, and a live alert reaches tail --nats', async () => {
    const dd = d as Daemon;
    nats = natsServer(natsPort, tmp.dir);
    await natsUp(natsPort);
    // the daemon retries about once a second: its stream exists once it says it is back
    // (tail --nats of a stream not made yet stops, saying so)
    await until('the daemon back on NATS', () => readLog(dd.log).some((r) => r.kind === 'daemon' && r.phase === 'output-recovered' && r.output === 'nats'));
    let out = '';
    tail = spawn(process.execPath, [CLI, 'tail', '--nats', url()], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    tail.stdout?.on('data', (b) => {
      out += b;
    });
    // the spooled start of the log arrives first
    await until('the spooled records in tail', () => out.includes('"seq":0,'));
    const a = await dd.provoke();
    const line = await until('the provoked alert in tail --nats', () => out.split('\n').find((l) => l.includes(`"hash":"${a.hash}"`)));
    const got = JSON.parse(line) as Record<string, unknown>;
    assert.equal(got.host, host);
    assert.equal(got.rule, 'signal-outside-tree');
    assert.ok(readLog(dd.log).some((r) => r.kind === 'daemon' && r.phase === 'output-recovered' && r.output === 'nats'), 'the recovery is in the log');
  });

  test('NATS killed, an alert raised, NATS back: the stream holds every record once, in order; audit --nats verifies it', async () => {
    const dd = d as Daemon;
    await stopChild(nats, 'SIGKILL');
    const during = await dd.provoke();
    await sleep(500);
    nats = natsServer(natsPort, tmp.dir);
    await natsUp(natsPort);
    // every record up to the one raised while NATS was away, in the stream
    const streamed = await until(
      'the stream to catch up',
      async () => {
        const recs: LogRecord[] = [];
        for await (const r of natsRecords({ url: url(), stream: 'REDLINE', prefix: 'redline', host, follow: false })) recs.push(JSON.parse(r.text) as LogRecord);
        return recs.some((r) => r.seq === during.seq) ? recs : null;
      },
      60_000,
    );
    const log = readLog(dd.log);
    assert.deepEqual(
      streamed.map((r) => r.seq),
      streamed.map((_, i) => i),
      'every record exactly once, in order',
    );
    for (const r of streamed) assert.equal(r.hash, log[r.seq]?.hash, `seq ${r.seq} as the log has it`);
    const a = await redline(['audit', '--json', '--nats', url(), '--host', host]);
    assert.equal(a.code, 0, a.stderr);
    const report = JSON.parse(a.stdout) as { chain: { ok: boolean; records: number } };
    assert.equal(report.chain.ok, true);
    assert.ok(report.chain.records > during.seq);
  });

  test('Prometheus scrapes /metrics and answers redline_alerts_total{category="process.kill"}', { skip: PROMETHEUS ? false : 'needs prometheus (apt-get install -y prometheus)' }, async () => {
    const promPort = await freePort();
    const config = join(tmp.dir, 'prometheus.yml');
    writeFileSync(config, `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: redline\n    static_configs:\n      - targets: ['127.0.0.1:${metricsPort}']\n`);
    prom = spawn(PROMETHEUS as string, [`--config.file=${config}`, `--storage.tsdb.path=${join(tmp.dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    const q = encodeURIComponent('redline_alerts_total{category="process.kill"}');
    const result = await until(
      'Prometheus to answer',
      async () => {
        try {
          const r = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${q}`)).json()) as { data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
          return r.data?.result.length ? r.data.result : null;
        } catch {
          return null;
        }
      },
      60_000,
    );
    assert.equal(result[0]?.metric.rule, 'signal-outside-tree');
    assert.equal(result[0]?.metric.severity, 'high');
    assert.ok(Number(result[0]?.value[1]) >= 2, 'both provoked kills counted');
    // and the daemon's own view of the same
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(text, /redline_sensor_up\{sensor="ebpf"\} 1/);
    assert.match(text, /redline_nats_connected 1/);
    assert.match(text, /redline_chain_head_seq \d+/);
    assert.match(text, /redline_alert_latency_seconds_count \d+/);
  });

  test('what the user must fix stops the command with the reason: a metrics port taken, a stream with other subjects, refused credentials', async () => {
    const exec = (args: string[]) => redline(['exec', '--log', join(tmp.dir, 'bad.ndjson'), ...args, '--', 'true']);
    const taken = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => taken.once('listening', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await exec(['--metrics', `127.0.0.1:${port}`]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--metrics 127\.0\.0\.1:\d+: the port is already taken/);
    } finally {
      taken.close();
    }
    const nc = await connect({ servers: `127.0.0.1:${natsPort}` });
    await (await nc.jetstreamManager()).streams.add({ name: 'OTHER', subjects: ['elsewhere.>'] });
    await nc.close();
    const s = await exec(['--nats', url(), '--nats-stream', 'OTHER']);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /--nats-stream OTHER exists with subjects \["elsewhere\.>"\], which do not take redline\.>/);
    const authPort = await freePort();
    const secured = natsServer(authPort, join(tmp.dir, 'auth'), ['--auth', 's3cret']);
    try {
      await until('the secured nats-server', () => existsSync(join(tmp.dir, 'auth')));
      await sleep(300);
      const c = await exec(['--nats', `nats://127.0.0.1:${authPort}`, '--nats-token', 'wrong']);
      assert.equal(c.code, 2, c.stderr);
      assert.match(c.stderr, /refused the credentials/);
    } finally {
      await stopChild(secured);
    }
  });
});
