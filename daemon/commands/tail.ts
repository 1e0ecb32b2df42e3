// `redline tail`: the live stream from a running daemon, one JSON record per line (or a
// readable colored line on a terminal). A dropped connection is retried with backoff and
// resumed from the record after the last one printed, so nothing is missed or repeated.
// It ends (exit 0) on SIGINT/SIGTERM, or when the daemon closes the stream cleanly (it
// stopped) unless --follow keeps it waiting for the daemon to come back.
import { existsSync, readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { clean } from '../audit/report-text.js';
import { DEFAULTS } from '../config/schema.js';
import { DAEMON_STOPPED, tokenFileFor } from '../outputs/stream.js';
import { UsageError } from './setup.js';

export interface TailOptions {
  url?: string;
  token?: string;
  since?: string;
  follow?: boolean;
  /** print heartbeats too */
  heartbeats?: boolean;
  /** the readable form even when not on a terminal (and JSON when false) */
  pretty?: boolean;
}

const COLORS: Record<string, string> = { critical: '\x1b[1;31m', high: '\x1b[31m', medium: '\x1b[33m', low: '\x1b[36m', info: '\x1b[2m' };

/** one record as a line for a person; text from the subject has its control characters escaped */
export function readable(r: Record<string, unknown>, color: boolean): string {
  const time = new Date(Number(r.time)).toISOString().slice(11, 23);
  const paint = (c: string | undefined, s: string) => (color && c ? `${c}${s}\x1b[0m` : s);
  const trial = r.trial ? ` [${clean(String(r.trial))}]` : '';
  switch (r.kind) {
    case 'alert':
      return `${time} #${r.seq}${trial} ${paint(COLORS[String(r.severity)], `${String(r.severity).toUpperCase()} ${r.category}`)} ${clean(String(r.summary))}`;
    case 'action':
      return `${time} #${r.seq}${trial} ${paint('\x1b[35m', `action ${r.action}`)} ${r.ok ? 'ok' : r.skipped ? 'skipped' : 'FAILED'} ${r.latency_ms ?? ''} ms (${r.cause ?? ''})`;
    case 'trial':
      return `${time} #${r.seq} ${paint('\x1b[1m', `trial ${r.trial} ${r.phase}`)}`;
    case 'heartbeat':
      return `${time} heartbeat: chain head #${(r.head as { seq: number }).seq}${r.seal ? `, sealed to #${String((r.seal as { head_seq?: unknown }).head_seq)}` : ''}`;
    case 'seal':
      return `${time} #${r.seq} seal (${clean(String(r.reason))}) over #${String(r.head_seq)} by key ${clean(String(r.key_id))}`;
    default:
      return `${time} #${r.seq ?? ''}${trial} ${r.kind}${r.phase ? ` ${r.phase}` : ''}${r.type ? ` ${r.type}` : ''}`;
  }
}

function tokenFor(url: URL, given: string | undefined): string | undefined {
  if (given) return given;
  if (process.env[DEFAULTS.wsTokenEnv]) return process.env[DEFAULTS.wsTokenEnv];
  // a daemon on this host without a configured token keeps its generated one here
  const file = tokenFileFor(Number(url.port || 80));
  try {
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  } catch {
    // not readable (not root): the server says 401
  }
  return undefined;
}

export function tailCommand(opts: TailOptions, out = process.stdout, err = process.stderr): Promise<number> {
  const base = new URL(opts.url ?? `ws://${DEFAULTS.runWs.host}:${DEFAULTS.runWs.port}/stream`);
  if (base.pathname === '/' || base.pathname === '') base.pathname = '/stream';
  let next: number | null = null;
  if (opts.since !== undefined) {
    next = Number(opts.since);
    if (!Number.isInteger(next) || next < 0) throw new UsageError(`--since: "${opts.since}" is not a record number (0 or more)`);
  }
  const token = tokenFor(base, opts.token);
  const pretty = opts.pretty ?? out.isTTY === true;
  const color = pretty && out.isTTY === true;
  return new Promise((done) => {
    let ws: WebSocket | null = null;
    let backoff = 100;
    let stopping = false;
    const finish = (code: number) => {
      stopping = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      ws?.terminate();
      done(code);
    };
    const onSignal = () => finish(0);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    const connect = () => {
      if (stopping) return;
      const url = new URL(base);
      if (next !== null) url.searchParams.set('since', String(next));
      const sock = new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, maxPayload: 64 << 20 });
      ws = sock;
      sock.on('open', () => {
        backoff = 100;
      });
      sock.on('unexpected-response', (_req, res) => {
        if (res.statusCode === 401) {
          err.write(`redline: ${base.host} refused the token (401): give --token or ${DEFAULTS.wsTokenEnv}\n`);
          return finish(2);
        }
        err.write(`redline: ${base.host} answered HTTP ${res.statusCode}\n`);
        sock.terminate();
      });
      sock.on('message', (data) => {
        let r: Record<string, unknown>;
        try {
          r = JSON.parse(data.toString()) as Record<string, unknown>;
        } catch {
          return;
        }
        if (r.kind === 'heartbeat' || r.kind === 'pong') {
          if (opts.heartbeats) out.write(`${pretty ? readable(r, color) : JSON.stringify(r)}\n`);
          return;
        }
        if (typeof r.seq === 'number') {
          if (next !== null && r.seq < next) return; // already printed before a reconnect
          next = r.seq + 1;
        }
        out.write(`${pretty ? readable(r, color) : data.toString()}\n`);
      });
      sock.on('error', () => undefined); // 'close' follows and decides
      sock.on('close', (code, reason) => {
        if (stopping) return;
        if (code === DAEMON_STOPPED && !opts.follow) return finish(0);
        if (pretty) err.write(`redline: stream closed (${code}${reason.length ? ` ${reason.toString()}` : ''}); reconnecting in ${backoff} ms\n`);
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 5000);
      });
    };
    connect();
  });
}
