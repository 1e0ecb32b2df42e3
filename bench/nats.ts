// The NATS output and the metrics, against a real `nats-server -js` on this host. Prints JSON.
// 1. publish latency: alert records appended to an audit log at 500/s for 4 s, each to the
//    stream by the output (NatsOutput, as the daemon wires it); an ordered consumer in the same
//    process timestamps each arrival: record written → visible to a stream consumer.
// 2. the spool while NATS is down: the server killed, records at 1000/s for 3 s: spool growth;
//    the server back: how long the spool takes to go out.
// 3. the daemon's extra CPU: a paced agent (250 kills, 10 ms apart) under `exec --mode
//    observe`, plain and with --nats and --metrics (a Prometheus-like scrape every second),
//    alternating, 2 rounds each: the daemon's CPU and kill → alert on disk.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { execCommand } from '../daemon/commands/exec.js';
import { AuditLog } from '../daemon/outputs/audit-log.js';
import { NatsOutput } from '../daemon/outputs/nats.js';
import { type AlertInfo, Pipeline } from '../daemon/pipeline.js';
import { summary } from './stats.js';

const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number) => Math.round(x * 100) / 100;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}
async function startNats(port: number): Promise<ChildProcess> {
  const c = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(dir, 'js')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try {
      await (await connect({ servers: `127.0.0.1:${port}`, reconnect: false })).close();
      return c;
    } catch {
      await sleep(50);
    }
  }
  throw new Error('nats-server did not start');
}
async function kill(c: ChildProcess): Promise<void> {
  const gone = new Promise((r) => c.once('exit', r));
  c.kill('SIGKILL');
  await gone;
}
const alert = (i: number) => ({ kind: 'alert', trial: 't-bench', rule: 'signal-outside-tree', category: 'process.kill', severity: 'high', summary: `sh (pid ${1000 + (i % 50)}) sent SIGCONT to sleep (pid 77)`, pid: 1000 + (i % 50), event: { type: 'signal', sig: 18 } });

const port = await freePort();
let server = await startNats(port);
const url = `nats://127.0.0.1:${port}`;
try {
  // 1. latency
  const logPath = join(dir, 'log.ndjson');
  const out = new NatsOutput({ url, stream: 'BENCH', prefix: 'bench', host: 'bench-host', logPath, spoolMaxBytes: 1 << 30 });
  await out.start();
  out.attach({ degraded: () => undefined, recovered: () => undefined });
  const log = AuditLog.open(logPath);
  const written = new Map<number, number>();
  log.on('record', (s) => {
    written.set(s.seq, performance.now());
    out.push(s.line, s.seq, s.hash);
  });
  const nc = await connect({ servers: url });
  const consumer = await nc.jetstream().consumers.get('BENCH', { filterSubjects: 'bench.>' });
  const latencies: number[] = [];
  const messages = await consumer.consume();
  void (async () => {
    for await (const m of messages) {
      const t = written.get(Number(m.headers?.get('Redline-Seq')));
      if (t !== undefined) latencies.push(performance.now() - t);
    }
  })();
  const N = 2000;
  for (let i = 0; i < N; i++) {
    log.append(alert(i));
    await sleep(2);
  }
  const deadline = Date.now() + 30_000;
  while (latencies.length < N && Date.now() < deadline) await sleep(50);
  console.log(JSON.stringify({ bench: 'nats-publish', unit: 'ms', records: N, rate_per_s: 500, ...summary(latencies.map(round)) }));

  // the floor: the same records published straight with the client (no log, no output), same consumer set-up
  await (await nc.jetstreamManager()).streams.add({ name: 'BENCHFLOOR', subjects: ['benchfloor.>'] });
  const floorConsumer = await nc.jetstream().consumers.get('BENCHFLOOR', { filterSubjects: 'benchfloor.>' });
  const floorMessages = await floorConsumer.consume();
  const sent = new Map<number, number>();
  const floor: number[] = [];
  void (async () => {
    for await (const m of floorMessages) {
      const t = sent.get(Number(m.string().slice(0, 12)));
      if (t !== undefined) floor.push(performance.now() - t);
    }
  })();
  const js = nc.jetstream();
  for (let i = 0; i < N; i++) {
    sent.set(i, performance.now());
    void js.publish('benchfloor.x', `${String(i).padStart(12, '0')}${JSON.stringify(alert(i))}`).catch(() => undefined);
    await sleep(2);
  }
  const floorDeadline = Date.now() + 30_000;
  while (floor.length < N && Date.now() < floorDeadline) await sleep(50);
  console.log(JSON.stringify({ bench: 'nats-publish (floor: the client alone)', unit: 'ms', records: N, rate_per_s: 500, ...summary(floor.map(round)) }));
  await floorMessages.close();

  // 2. the spool while NATS is down
  await kill(server);
  const spool = `${logPath}.nats-spool`;
  const before = (() => {
    try {
      return statSync(spool).size;
    } catch {
      return 0;
    }
  })();
  const M = 3000;
  const t0 = performance.now();
  for (let i = 0; i < M; i++) {
    log.append(alert(i));
    if (i % 10 === 9) await sleep(10);
  }
  const secs = (performance.now() - t0) / 1000;
  const grown = statSync(spool).size - before;
  server = await startNats(port);
  const t1 = performance.now();
  while (out.status().spoolBytes > 0 || out.status().pending > 0) await sleep(20);
  const drainS = (performance.now() - t1) / 1000;
  console.log(JSON.stringify({ bench: 'nats-spool', records: M, seconds: round(secs), spool_bytes: grown, bytes_per_record: Math.round(grown / M), spool_kb_per_s: Math.round(grown / 1024 / secs), drain_s_after_restart: round(drainS), drain_records_per_s: Math.round(M / drainS) }));
  await messages.close();
  await nc.close();
  log.close();
  await out.stop();

  // 3. the daemon's extra CPU
  const victim = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
  const script = join(dir, 'agent.sh');
  writeFileSync(script, `#!/bin/sh\ni=0\nwhile [ $i -lt 250 ]; do /bin/kill -CONT ${victim.pid}; sleep 0.01; i=$((i+1)); done\n`);
  chmodSync(script, 0o755);
  let alerts: number[] = [];
  const orig = Pipeline.prototype.emit;
  Pipeline.prototype.emit = function (this: Pipeline, name: string | symbol, ...args: unknown[]) {
    const a = args[0] as AlertInfo | undefined;
    if (name === 'alert' && a?.on_disk_ms !== undefined && a.category === 'process.kill' && a.pid < 4_194_304) alerts.push(a.on_disk_ms);
    return orig.call(this, name, ...args);
  };
  const metricsPort = await freePort();
  for (let round_ = 0; round_ < 2; round_++) {
    for (const withOutputs of [false, true]) {
      alerts = [];
      const scrape = withOutputs ? setInterval(() => void fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text()).catch(() => undefined), 1000) : null;
      const c0 = process.cpuUsage();
      const extra = withOutputs ? { nats: url, metrics: `127.0.0.1:${metricsPort}` } : {};
      await execCommand([script], { mode: 'observe', log: join(dir, `cpu-${round_}-${withOutputs}.ndjson`), quiet: true, socket: 'off', ...extra });
      const cpu = process.cpuUsage(c0);
      if (scrape) clearInterval(scrape);
      console.log(JSON.stringify({ bench: 'nats-metrics-cpu', outputs: withOutputs ? 'nats+metrics' : 'none', kills: 250, pace_ms: 10, daemon_cpu_ms: Math.round((cpu.user + cpu.system) / 1000), alert_ms: summary(alerts) }));
    }
  }
  victim.kill('SIGKILL');
} finally {
  server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
