// Alert written → websocket client, with 1 and with 100 clients connected (all in this
// process), over KILLS alerts each; then the daemon's memory while one client never reads a
// 100 MB replay. Runs `redline run` as a child. Prints JSON. Needs root and bpftrace.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { findCgroupV2Mount, groupPids, removeGroup } from '../daemon/cgroup.js';
import { AuditLog } from '../daemon/outputs/audit-log.js';
import { freePort } from '../tests/helpers/stream.js';
import { summary } from './stats.js';

const KILLS = Number(process.env.KILLS ?? 200);
const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const victim = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
const cue = join(dir, 'cue');
// on each cue: KILLS signals outside the tree, 10 ms apart, each from a fresh process (its own alert)
const agent = spawn('/bin/sh', ['-c', `while true; do if [ -e ${cue} ]; then rm -f ${cue}; i=0; while [ $i -lt ${KILLS} ]; do /bin/kill -CONT ${victim.pid}; sleep 0.01; i=$((i+1)); done; fi; sleep 0.01; done`], { stdio: 'ignore' });
const now = () => performance.timeOrigin + performance.now();

async function daemon(log: string, port: number, token: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'daemon/cli.ts'), 'run', '--subject-pid', String(agent.pid), '--mode', 'observe', '--log', log, '--ws', `127.0.0.1:${port}`, '--ws-token', token, '--socket', 'off'], { cwd: ROOT, stdio: 'ignore' });
  for (let i = 0; i < 600 && !(existsSync(log) && readFileSync(log, 'utf8').includes('"output":"websocket"')); i++) await new Promise((r) => setTimeout(r, 50));
  return child;
}

function client(url: string, token: string, onAlert: (r: { seq: number; written: number }, at: number) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    ws.on('message', (data) => {
      const at = now();
      const r = JSON.parse(data.toString()) as { kind: string; seq: number; event?: { time: number }; latency_ms?: number };
      // the alert's write time: its kernel event time plus the event → write latency it records
      if (r.kind === 'alert' && r.event && r.latency_ms !== undefined) onAlert({ seq: r.seq, written: r.event.time + r.latency_ms }, at);
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function latency(clients: number, port: number, token: string): Promise<void> {
  const samples: number[] = [];
  const seen = new Set<number>();
  const url = `ws://127.0.0.1:${port}/stream`;
  const sockets = await Promise.all(Array.from({ length: clients }, () => client(url, token, (r, at) => {
    samples.push(at - r.written);
    seen.add(r.seq);
  })));
  writeFileSync(cue, '');
  const t0 = Date.now();
  while (samples.length < KILLS * clients && Date.now() - t0 < KILLS * 100 + 20_000) await new Promise((r) => setTimeout(r, 100));
  console.log(JSON.stringify({ bench: 'alert-to-websocket-client', unit: 'ms', clients, alerts: seen.size, ...summary(samples) }));
  for (const s of sockets) s.terminate();
}

async function stalled(): Promise<void> {
  const log = join(dir, 'big.ndjson');
  const prefill = AuditLog.open(log);
  const filler = 'x'.repeat(1000);
  for (let i = 0; i < 100_000; i++) prefill.append({ kind: 'event', type: 'filler', i, filler });
  prefill.close();
  const port = await freePort();
  const token = 'bench';
  const d = await daemon(log, port, token);
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  const before = rss();
  const s = createConnection(port, '127.0.0.1');
  s.on('error', () => undefined);
  s.write(`GET /stream?since=0 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  s.pause();
  let peak = before;
  const t0 = Date.now();
  while (Date.now() - t0 < 15_000) {
    peak = Math.max(peak, rss());
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(JSON.stringify({ bench: 'daemon-memory-one-stalled-client', unit: 'MB', replay_mb: 100, rss_before: Math.round(before), rss_peak: Math.round(peak), growth: Math.round(peak - before) }));
  s.destroy();
  d.kill('SIGTERM');
  await new Promise((r) => d.once('close', r));
}

try {
  const port = await freePort();
  const token = 'bench';
  const d = await daemon(join(dir, 'ws.ndjson'), port, token);
  await latency(1, port, token);
  await latency(100, port, token);
  d.kill('SIGTERM');
  await new Promise((r) => d.once('close', r));
  await stalled();
} finally {
  agent.kill('SIGKILL');
  victim.kill('SIGKILL');
  const group = join(findCgroupV2Mount() ?? '/nonexistent', 'redline', `pid-${agent.pid}`);
  for (const pid of groupPids(group)) process.kill(pid, 'SIGKILL');
  const t0 = Date.now();
  while (groupPids(group).length > 0 && Date.now() - t0 < 2000);
  removeGroup(group);
  rmSync(dir, { recursive: true, force: true });
}
