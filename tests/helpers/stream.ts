// Websocket clients and a running `redline run` with a subject that acts on cue.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { bystander } from './procs.js';
import { type LogRecord, startRedline } from './redline.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** a client that keeps every record it receives (heartbeats apart) */
export class Watcher {
  readonly records: LogRecord[] = [];
  readonly heartbeats: Record<string, unknown>[] = [];
  readonly received: { seq: number; at: number }[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const r = JSON.parse(data.toString()) as LogRecord;
      if (r.kind === 'heartbeat') this.heartbeats.push(r);
      else {
        this.records.push(r);
        this.received.push({ seq: r.seq, at: Date.now() });
      }
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('error', () => undefined);
  }

  async waitFor(pred: (w: Watcher) => boolean, timeoutMs = 15_000): Promise<void> {
    const t0 = Date.now();
    while (!pred(this)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out; have ${this.records.length} records, closed ${JSON.stringify(this.closed)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100).unref();
      });
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

/** connects; resolves with the client, or rejects with the HTTP status of a refused upgrade */
export function connect(url: string, headers: Record<string, string> = {}): Promise<Watcher> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const w = new Watcher(ws);
    ws.once('open', () => resolve(w));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

/** the complete records written to `path` after byte `from` */
function recordsFrom(path: string, from: number): LogRecord[] {
  if (!existsSync(path)) return [];
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - from));
    readSync(fd, buf, 0, buf.length, from);
    const text = buf.toString('utf8');
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogRecord);
  } finally {
    closeSync(fd);
  }
}

export interface Daemon {
  log: string;
  socket: string;
  url: string;
  token: string;
  agent: ChildProcess;
  victim: number;
  child: ChildProcess;
  done: Promise<{ code: number | null; stderr: string }>;
  /** makes the subject signal a process outside its tree once (a high alert each time) */
  provoke(): Promise<LogRecord>;
}

/**
 * `redline run --subject-pid` on a shell that, each time a cue file appears, sends SIGCONT
 * from a fresh /bin/kill (a new process, so de-duplication never folds the alerts).
 */
export async function startDaemon(dir: string, extra: string[] = [], port?: number): Promise<Daemon> {
  const victim = bystander();
  const cue = join(dir, 'cue');
  const agent = spawn('/bin/sh', ['-c', `while true; do if [ -e ${cue} ]; then rm -f ${cue}; /bin/kill -CONT ${victim}; fi; sleep 0.01; done`], { stdio: 'ignore' });
  port ??= await freePort();
  const token = `t-${process.pid}-${port}`;
  const log = join(dir, 'daemon.ndjson');
  const socket = join(dir, 'control.sock');
  const from = existsSync(log) ? statSync(log).size : 0;
  const { child, done } = startRedline(['run', '--subject-pid', String(agent.pid), '--mode', 'observe', '--log', log, '--ws', `127.0.0.1:${port}`, '--ws-token', token, '--socket', socket, ...extra]);
  // ready once its control socket is up (a log from an earlier daemon may already say so)
  const t0 = Date.now();
  while (!recordsFrom(log, from).some((r) => r.kind === 'daemon' && r.phase === 'output' && r.output === 'control')) {
    if (Date.now() - t0 > 30_000 || child.exitCode !== null) throw new Error(`the daemon did not start: ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const isKill = (r: LogRecord) => r.kind === 'alert' && r.rule === 'signal-outside-tree';
  return {
    log,
    socket,
    url: `ws://127.0.0.1:${port}/stream`,
    token,
    agent,
    victim,
    child,
    done,
    async provoke() {
      while (existsSync(cue)) await new Promise((r) => setTimeout(r, 5));
      // only what is written from now on is read (the log may be large)
      const from = statSync(log).size;
      writeFileSync(cue, '');
      const t0 = Date.now();
      while (Date.now() - t0 < 15_000) {
        const found = recordsFrom(log, from).find(isKill);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('the provoked kill raised no alert');
    },
  };
}
