// The live stream: the log's records over a websocket at ws://HOST:PORT/stream.
//
// - Every connection presents the bearer token (`Authorization: Bearer T` or `?token=T`),
//   compared in constant time; otherwise the upgrade gets HTTP 401.
// - Each message is one log record, exactly as written to the log, sent once it is on disk.
//   `?since=SEQ` first replays the log from SEQ, then goes live without a gap or a repeat.
// - Filters: `?kind=alert,action`, and for alerts `?severity=high` (that or worse) and
//   `?category=replica.*,process.kill` (a trailing `*` matches a prefix).
// - A heartbeat `{"kind":"heartbeat","time":…,"head":{"seq":…,"hash":…},"seal":{…}}` every few
//   seconds carries the chain head and, with --sign-key, the last seal record, so a watcher
//   off the box holds them too (a log cut short later still shows against them).
// - A client that falls behind (its unsent data passes the per-client limit) is told with a
//   close frame (4008, with the seq to resume from) and dropped: it can never grow the
//   daemon's memory or delay the log or a freeze. Broadcasting runs after the write that
//   produced the record has returned (setImmediate), off the event → alert → freeze path.
// - Clients have nothing to say: anything but a small JSON message closes that client.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, createReadStream, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { type Severity, SEVERITIES, severityRank } from '../events.js';
import type { ControlReply, ControlRequest } from '../control/server.js';
import type { ChainHead, Sealed } from './chain.js';
import { dashboardResponse } from './dashboard.js';
import { makeDirs } from '../make-dirs.js';
import { linesOf } from '../lines.js';

export interface StreamOptions {
  host: string;
  port: number;
  token: string;
  /** the log file to replay `since` from */
  logPath: string;
  head: () => ChainHead;
  /** the last seal record (--sign-key): the heartbeat carries it off the host */
  seal?: () => Record<string, unknown> | null;
  heartbeatMs?: number;
  /** unsent bytes one client may hold before it is dropped */
  maxBufferedBytes?: number;
  /** live records held for a client while its replay is still reading the log */
  maxBacklog?: number;
  /** --ws-operator-token NAME:TOKEN: tokens that may also operate (freeze, thaw, kill, mode) */
  operators?: readonly { name: string; token: string }[];
  /** carries out an operator's command (the control socket's handler); `who` is the token's name */
  control?: (req: ControlRequest, who: string) => Promise<ControlReply>;
}

export const FELL_BEHIND = 4008;
/** close code for a clean stop of the daemon: `redline tail` ends on it */
export const DAEMON_STOPPED = 1000;
const MAX_PAYLOAD = 4096;

interface Filter {
  kinds: Set<string> | null;
  minSeverity: number;
  categories: string[] | null;
}

interface Client {
  ws: WebSocket;
  /** the operator token's name; null: the read-only token */
  operator: string | null;
  filter: Filter;
  /** live lines that arrived while the replay was reading the log */
  backlog: Sealed[] | null;
  lastSent: number;
  dropped: boolean;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** constant time in the token's content (both sides are hashed to one length first) */
export function tokenMatches(given: string | null, want: string): boolean {
  if (given === null) return false;
  return timingSafeEqual(digest(given), digest(want));
}

/** the browser's way (the dashboard): subprotocols `redline` and `redline.token.BASE64URL`, which keeps the token out of any URL */
const TOKEN_PROTOCOL = 'redline.token.';

function presentedToken(req: IncomingMessage, url: URL): string | null {
  const auth = req.headers.authorization;
  const m = auth ? /^Bearer\s+(.+)$/i.exec(auth) : null;
  if (m) return (m[1] as string).trim();
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const carried = offered.find((p) => p.startsWith(TOKEN_PROTOCOL));
  if (carried) return Buffer.from(carried.slice(TOKEN_PROTOCOL.length), 'base64url').toString('utf8');
  return url.searchParams.get('token');
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n${status === 401 ? 'WWW-Authenticate: Bearer\r\n' : ''}\r\n${text}`);
  // the answer goes out first; a client that keeps its end open is cut off soon after
  setTimeout(() => socket.destroy(), 1000).unref();
}

function list(v: string | null): string[] | null {
  if (v === null) return null;
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return items.length > 0 ? items : null;
}

export function parseFilter(url: URL): Filter | string {
  const severity = url.searchParams.get('severity');
  if (severity !== null && !(SEVERITIES as readonly string[]).includes(severity)) return `unknown severity "${severity}" (${SEVERITIES.join(', ')})`;
  const kinds = list(url.searchParams.get('kind'));
  return { kinds: kinds ? new Set(kinds) : null, minSeverity: severity ? severityRank(severity as Severity) : 0, categories: list(url.searchParams.get('category')) };
}

/** a client that asked for every record */
function unfiltered(f: Filter): boolean {
  return f.kinds === null && f.minSeverity === 0 && f.categories === null;
}

export function passes(f: Filter, r: Record<string, unknown>): boolean {
  const kind = String(r.kind);
  if (f.kinds && !f.kinds.has(kind)) return false;
  if (kind !== 'alert') return true;
  if (severityRank(r.severity as Severity) < f.minSeverity) return false;
  const cat = String(r.category);
  return !f.categories || f.categories.some((c) => (c.endsWith('*') ? cat.startsWith(c.slice(0, -1)) : cat === c));
}

const SEQ_FIRST = /^\{"seq":(\d+),/;

/** the complete lines of a file, read in chunks (a torn last line is left out) */
async function* logLines(file: string): AsyncGenerator<string> {
  for await (const line of linesOf(createReadStream(file, { encoding: 'utf8', highWaterMark: 256 * 1024 }), false)) if (line !== '') yield line;
}

export class StreamServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private queue: Sealed[] = [];
  private flushing = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly maxBuffered: number;
  private readonly maxBacklog: number;
  /** the last record handed to publish(): a new live client starts after it */
  private lastPublished: number;
  readonly counts = { connected: 0, refused: 0, dropped: 0 };

  constructor(private readonly o: StreamOptions) {
    this.maxBuffered = o.maxBufferedBytes ?? 1 << 20;
    this.maxBacklog = o.maxBacklog ?? 10_000;
    this.lastPublished = o.head().seq;
    // GET / is the dashboard (static: it asks for the token and opens the stream with it)
    this.http = createServer((req, res) => {
      let page: ReturnType<typeof dashboardResponse> = null;
      try {
        page = req.method === 'GET' || req.method === 'HEAD' ? dashboardResponse(req.url ?? '/') : null;
      } catch (err) {
        // the page's files unreadable: an answer that says so, never a throw out of the server
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`the dashboard's files cannot be read: ${(err as Error).message}\n`);
        return;
      }
      if (page) res.writeHead(200, page.headers).end(req.method === 'HEAD' ? undefined : page.body);
      else res.writeHead(426, { 'content-type': 'text/plain' }).end('websocket only: ws://HOST:PORT/stream (the dashboard is at /)\n');
    });
    // a browser that offered the token as a subprotocol gets `redline` chosen (never the token echoed back)
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: false, handleProtocols: (protocols) => (protocols.has('redline') ? 'redline' : false) });
    this.http.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.http.on('clientError', (_err, socket) => socket.destroy());
  }

  /** resolves with the port bound (useful with port 0) */
  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.o.port, this.o.host, () => {
        this.http.off('error', reject);
        const addr = this.http.address();
        this.heartbeat = setInterval(() => this.beat(), this.o.heartbeatMs ?? 5000);
        this.heartbeat.unref();
        resolve(typeof addr === 'object' && addr ? addr.port : this.o.port);
      });
    });
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** a record now on disk (AuditLog's `record` event); sent after the current call stack */
  publish(sealed: Sealed): void {
    this.lastPublished = sealed.seq;
    if (this.clients.size === 0) return;
    this.queue.push(sealed);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  async stop(reason = 'daemon stopped'): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.flush();
    for (const c of this.clients) c.ws.close(DAEMON_STOPPED, reason);
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        for (const c of this.clients) c.ws.terminate();
        resolve();
      }, 500);
      t.unref();
      const check = setInterval(() => {
        if (this.clients.size === 0) {
          clearInterval(check);
          clearTimeout(t);
          resolve();
        }
      }, 10);
      check.unref();
    });
    this.wss.close();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://redline');
    } catch {
      return refuse(socket, 400, 'Bad Request');
    }
    if (url.pathname !== '/stream') return refuse(socket, 404, 'Not Found');
    const given = presentedToken(req, url);
    // every operator token is compared too, whichever matches: the time says nothing of which
    const operator = (this.o.operators ?? []).reduce<string | null>((found, op) => (tokenMatches(given, op.token) ? op.name : found), null);
    if (!tokenMatches(given, this.o.token) && operator === null) {
      this.counts.refused++;
      return refuse(socket, 401, 'Unauthorized');
    }
    const filter = parseFilter(url);
    if (typeof filter === 'string') return refuse(socket, 400, 'Bad Request');
    const sinceText = url.searchParams.get('since');
    const since = sinceText === null ? null : Number(sinceText);
    if (since !== null && (!Number.isInteger(since) || since < 0)) return refuse(socket, 400, 'Bad Request');
    const hello = url.searchParams.get('hello') === '1';
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, filter, since, operator, hello));
  }

  private connected(ws: WebSocket, filter: Filter, since: number | null, operator: string | null, hello: boolean): void {
    const c: Client = { ws, operator, filter, backlog: since === null ? null : [], lastSent: since === null ? this.lastPublished : since - 1, dropped: false };
    this.clients.add(c);
    this.counts.connected++;
    // ?hello=1 (the dashboard): first, whether this token may operate
    if (hello) ws.send(JSON.stringify({ kind: 'hello', time: Date.now(), operator: operator !== null, who: operator, head: this.o.head() }));
    ws.on('message', (data, isBinary) => this.heard(c, data as Buffer, isBinary));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => this.clients.delete(c));
    if (since !== null) void this.replay(c);
  }

  private heard(c: Client, data: Buffer, isBinary: boolean): void {
    let ok = !isBinary;
    if (ok) {
      try {
        const msg = JSON.parse(data.toString('utf8')) as { type?: unknown; id?: unknown; cmd?: unknown; mode?: unknown };
        if (msg?.type === 'ping') c.ws.send(JSON.stringify({ kind: 'pong', time: Date.now(), head: this.o.head() }));
        else if (msg?.type === 'control') void this.operate(c, msg);
        else ok = false;
      } catch {
        ok = false;
      }
    }
    if (!ok) c.ws.close(1003, 'this stream takes no messages but {"type":"ping"} and an operator\'s {"type":"control"}');
  }

  /** an operator's command from the page: only freeze, thaw, kill and mode, only for an operator token */
  private async operate(c: Client, msg: { id?: unknown; cmd?: unknown; mode?: unknown }): Promise<void> {
    const id = typeof msg.id === 'number' ? msg.id : null;
    const answer = (reply: Record<string, unknown>) => {
      if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify({ kind: 'control-result', time: Date.now(), id, ...reply }));
    };
    const cmd = String(msg.cmd);
    if (c.operator === null || !this.o.control) return answer({ ok: false, error: 'this token may watch but not operate (the daemon needs --ws-operator-token)' });
    if (!['freeze', 'thaw', 'kill', 'mode'].includes(cmd)) return answer({ ok: false, error: `the page operates freeze, thaw, kill and mode, not "${cmd.slice(0, 32)}"` });
    try {
      answer({ ...(await this.o.control({ cmd, ...(cmd === 'mode' ? { mode: msg.mode } : {}) }, c.operator)) });
    } catch (e) {
      answer({ ok: false, error: (e as Error).message });
    }
  }

  /** the log from `since` (lastSent + 1) on, paced by the client's reading; then the live records held meanwhile */
  private async replay(c: Client): Promise<void> {
    const all = unfiltered(c.filter);
    try {
      for await (const text of logLines(this.o.logPath)) {
        if (c.dropped || c.ws.readyState !== c.ws.OPEN) return;
        // the writer puts seq first: most lines need no parse at all
        const seq = Number(SEQ_FIRST.exec(text)?.[1] ?? Number.NaN);
        if (!Number.isInteger(seq) || seq <= c.lastSent) continue;
        if (all) c.ws.send(text);
        else {
          let r: Record<string, unknown>;
          try {
            r = JSON.parse(text) as Record<string, unknown>;
          } catch {
            continue; // a line still being written arrives live
          }
          if (passes(c.filter, r)) c.ws.send(text);
        }
        c.lastSent = seq;
        if (c.ws.bufferedAmount > this.maxBuffered / 2 && !(await this.drained(c))) return this.drop(c);
      }
    } catch {
      // the log cannot be read: the client gets what is live from here, and is told
      c.ws.send(JSON.stringify({ kind: 'notice', time: Date.now(), message: `cannot replay ${this.o.logPath}` }));
    }
    const held = c.backlog ?? [];
    c.backlog = null;
    for (const r of held) this.send(c, r);
  }

  /** waits (up to 10 s) for a client to read what it was sent */
  private async drained(c: Client): Promise<boolean> {
    for (let i = 0; i < 1000; i++) {
      if (c.ws.readyState !== c.ws.OPEN) return false;
      if (c.ws.bufferedAmount <= this.maxBuffered / 4) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  private flush(): void {
    this.flushing = false;
    const batch = this.queue;
    this.queue = [];
    for (const r of batch) for (const c of this.clients) this.send(c, r);
  }

  private send(c: Client, r: Sealed): void {
    if (c.dropped || r.seq <= c.lastSent) return;
    if (c.backlog) {
      if (c.backlog.length >= this.maxBacklog) return this.drop(c);
      c.backlog.push(r);
      return;
    }
    if (c.ws.bufferedAmount > this.maxBuffered) return this.drop(c);
    c.lastSent = r.seq;
    // (a filter parses the record; an unfiltered client gets the line as it is)
    if (unfiltered(c.filter) || passes(c.filter, r.record)) c.ws.send(r.line.slice(0, -1));
  }

  /** told (a close frame naming where to resume) and disconnected; its buffers are released */
  private drop(c: Client): void {
    if (c.dropped) return;
    c.dropped = true;
    this.counts.dropped++;
    c.ws.close(FELL_BEHIND, `fell behind: reconnect with since=${c.lastSent + 1}`);
    // a client that does not read will not read the close frame either
    setTimeout(() => c.ws.terminate(), 1000).unref();
  }

  private beat(): void {
    const seal = this.o.seal?.() ?? undefined;
    const msg = JSON.stringify({ kind: 'heartbeat', time: Date.now(), head: this.o.head(), seal });
    for (const c of this.clients) if (!c.dropped && !c.backlog && c.ws.bufferedAmount <= this.maxBuffered) c.ws.send(msg);
  }
}

/** where a generated token is kept for `redline tail` on the same host */
export function tokenFileFor(port: number): string {
  return `/run/redline/ws-${port}.token`;
}

/**
 * The token the stream requires: the configured one, else a random one written (0600) to
 * tokenFileFor(port), so that root on the same host can read it and nobody else.
 */
export function ensureToken(configured: string | undefined, port: number): { token: string; file?: string } {
  if (configured) return { token: configured };
  const token = randomBytes(24).toString('base64url');
  const file = tokenFileFor(port);
  makeDirs(dirname(file), 0o755);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, file };
}
