// The control socket: a unix socket (mode 0600, so only its owner — root — may connect)
// taking one JSON request per line and answering one JSON line each. Bad input gets an
// error answer and that connection closed; nothing a client sends can stop the daemon.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { makeDirs } from '../make-dirs.js';
import { LineSplitter } from '../lines.js';

export interface ControlRequest {
  cmd: string;
  [k: string]: unknown;
}

export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string; [k: string]: unknown };

export type ControlHandler = (req: ControlRequest) => Promise<ControlReply>;

const MAX_LINE = 64 * 1024;

/** is a daemon answering on this socket? (a stale socket file from a crash is not one) */
function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class ControlServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly handle: ControlHandler,
  ) {
    this.server = createServer((s) => this.connection(s));
  }

  async start(): Promise<void> {
    makeDirs(dirname(this.path), 0o755);
    let exists = false;
    try {
      const st = lstatSync(this.path);
      if (!st.isSocket()) throw new Error(`${this.path} exists and is not a socket`);
      exists = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (exists) {
      if (await answering(this.path)) throw new Error(`${this.path}: another redline answers there`);
      unlinkSync(this.path);
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      // created 0600 from the start: no window in which another user could connect. A socket
      // path is bound within listen() itself, so the process's umask is changed only for that
      // call (and put back even when it throws), never while other code runs
      const old = process.umask(0o177);
      try {
        this.server.listen(this.path, () => {
          this.server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(old);
      }
    });
    chmodSync(this.path, 0o600);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      // removed already
    }
  }

  private connection(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
    s.setEncoding('utf8');
    let busy = Promise.resolve();
    const requests = new LineSplitter(
      (raw) => {
        const line = raw.trim();
        // answered in order, one at a time
        if (line !== '') busy = busy.then(() => this.answer(s, line));
      },
      MAX_LINE,
      () => s.end(`${JSON.stringify({ ok: false, error: `request longer than ${MAX_LINE} bytes` })}\n`),
    );
    s.on('data', (chunk: string) => requests.push(chunk));
  }

  private async answer(s: Socket, line: string): Promise<void> {
    let req: ControlRequest;
    try {
      const v: unknown = JSON.parse(line);
      if (v === null || typeof v !== 'object' || typeof (v as { cmd?: unknown }).cmd !== 'string') throw new Error('a request is a JSON object with a "cmd" string');
      req = v as ControlRequest;
    } catch (e) {
      if (!s.destroyed) s.end(`${JSON.stringify({ ok: false, error: `bad request: ${(e as Error).message}` })}\n`);
      return;
    }
    let reply: ControlReply;
    try {
      reply = await this.handle(req);
    } catch (e) {
      reply = { ok: false, error: (e as Error).message };
    }
    if (!s.destroyed) s.write(`${JSON.stringify(reply)}\n`);
  }
}
