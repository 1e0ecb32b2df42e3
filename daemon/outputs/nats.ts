// `--nats URL`: every record, in order, to a NATS JetStream stream, so that many hosts' logs can
// be watched, alerted on and audited together on an engine the lab already runs.
//
// - Subject `PREFIX.HOST.KIND`; headers `Redline-Host` and `Redline-Seq`; the record's hash is
//   the message id, so a resend (after a timeout, or after the daemon restarts) is dropped by
//   the server's de-duplication.
// - Up to 64 messages in flight on one connection, which the server stores in the order sent;
//   only an all-acknowledged prefix counts as sent: the stream holds a host's records in its
//   log's order (a resend of one already stored is dropped by its id).
// - The log and the freeze never wait: a record reaches this output once it is on disk and is
//   queued. While NATS is away (or slower than the records), they wait in a spool file beside
//   the log (LOG.nats-spool) and go out in order when it returns, also after a restart of the
//   daemon. The spool is bounded (--nats-spool-max): past it, records are counted and reported
//   (they stay in the log, which `audit` reads), never silently dropped.
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { isAuthError, NatsConfigError, natsConnectOptions, RETRY_MS, subjectToken } from './nats-connect.js';

export { isAuthError, NatsConfigError, natsConnectOptions, subjectToken } from './nats-connect.js';
import { connect, headers, type JetStreamClient, type NatsConnection, nanos, StorageType } from 'nats';

export interface NatsOutputOptions {
  url: string;
  credsFile?: string;
  token?: string;
  stream: string;
  prefix: string;
  host: string;
  /** the audit log's path: the spool lives beside it */
  logPath: string;
  spoolMaxBytes: number;
}

/** where the output reports: the monitor attaches them once it runs (what came before waits) */
export interface NatsReports {
  /** something went wrong that may recover (the server away, a publish refused): one call per outage */
  degraded: (summary: string) => void;
  /** it recovered */
  recovered: (detail: string) => void;
}

interface Queued {
  line: string;
  seq: number;
  hash: string;
  /** the spool offset after this line (absent: from the memory queue) */
  fromSpool?: number;
}

/** a problem the user must fix before the daemon can start */

const MEM_MAX = 10_000;
/** publishes in flight at once */
const WINDOW = 64;
const PUBLISH_TIMEOUT_MS = 5000;
/** how long a resend is recognised as one (the stream's duplicate window) */
const DUPLICATE_WINDOW_MS = 60 * 60_000;

export class NatsOutput {
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private mem: Queued[] = [];
  private reports: NatsReports | null = null;
  private early: [keyof NatsReports, string][] = [];
  private spoolFd = -1;
  private readonly spoolPath: string;
  private readonly offsetPath: string;
  /** where sending from the spool stands */
  private readAt = 0;
  private spoolSize = 0;
  private stopped = false;
  private wake: (() => void) | null = null;
  private pump: Promise<void> | null = null;
  private down = false;
  private overflowed = 0;
  readonly counts = { published: 0, spooled: 0, overflowed: 0, resent: 0 };

  constructor(private readonly o: NatsOutputOptions) {
    this.spoolPath = `${o.logPath}.nats-spool`;
    this.offsetPath = `${o.logPath}.nats-spool.offset`;
  }

  /**
   * Connects and makes sure the stream is there (created when missing). Refused credentials
   * and a stream that exists with other subjects are errors the user must fix (thrown as
   * NatsConfigError). A server that cannot be reached is not: the daemon starts, records
   * are spooled, and the output keeps trying.
   */
  async start(): Promise<void> {
    this.openSpool();
    try {
      await this.connectOnce();
    } catch (e) {
      if (e instanceof NatsConfigError) {
        this.closeSpool();
        throw e;
      }
      this.markDown(`NATS ${this.o.url} unreachable at start (${(e as Error).message}): records are spooled to ${this.spoolPath} until it answers`);
    }
    this.pump = this.run();
  }

  private async connectOnce(): Promise<void> {
    let nc: NatsConnection;
    try {
      nc = await connect(natsConnectOptions(this.o));
    } catch (e) {
      if (isAuthError(e)) throw new NatsConfigError(`--nats ${this.o.url}: the server refused the credentials (${(e as Error).message})`);
      throw e;
    }
    try {
      await this.ensureStream(nc);
    } catch (e) {
      await nc.close().catch(() => undefined);
      throw e;
    }
    this.nc = nc;
    this.js = nc.jetstream({ timeout: PUBLISH_TIMEOUT_MS });
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.markDown(`NATS ${this.o.url}: disconnected; records are spooled until it returns`);
      }
    })().catch(() => undefined);
  }

  private async ensureStream(nc: NatsConnection): Promise<void> {
    const jsm = await nc.jetstreamManager();
    const want = `${this.o.prefix}.>`;
    try {
      const info = await jsm.streams.info(this.o.stream);
      const subjects = info.config.subjects ?? [];
      if (!subjects.some((s) => s === want || s === '>' || s === `${this.o.prefix.split('.')[0]}.>`)) {
        throw new NatsConfigError(`--nats-stream ${this.o.stream} exists with subjects ${JSON.stringify(subjects)}, which do not take ${want}: give another --nats-stream or --nats-prefix, or add ${want} to it`);
      }
    } catch (e) {
      if (e instanceof NatsConfigError) throw e;
      if (!/stream not found/i.test(String((e as Error).message))) throw e;
      await jsm.streams.add({ name: this.o.stream, subjects: [want], storage: StorageType.File, duplicate_window: nanos(DUPLICATE_WINDOW_MS) });
    }
  }

  attach(reports: NatsReports): void {
    this.reports = reports;
    for (const [what, text] of this.early.splice(0)) reports[what](text);
  }

  private report(what: keyof NatsReports, text: string): void {
    if (this.reports) this.reports[what](text);
    else if (this.early.length < 16) this.early.push([what, text]);
  }

  /** a record now on disk (its NDJSON line, with its newline); never blocks, never throws */
  push(line: string, seq: number, hash: string): void {
    if (this.stopped) return;
    // while NATS is away the records go to disk at once: a daemon that dies then loses none
    if (this.spoolSize === 0 && !this.down && this.mem.length < MEM_MAX) this.mem.push({ line, seq, hash });
    else this.spool([line]);
    this.wake?.();
  }

  status(): { connected: boolean; spoolBytes: number; pending: number } {
    return { connected: this.nc !== null && !this.down, spoolBytes: this.spoolSize - this.readAt, pending: this.mem.length };
  }

  /** sends what is queued (for at most `ms`), then keeps the rest in the spool for the next start */
  async stop(ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while ((this.mem.length > 0 || this.spoolSize > this.readAt) && this.nc && !this.down && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.stopped = true;
    this.wake?.();
    await this.pump;
    this.spill();
    await this.nc?.drain().catch(() => undefined);
    const empty = this.spoolSize <= this.readAt;
    this.closeSpool();
    // nothing left for the next start: no spool beside the log
    if (empty) for (const f of [this.spoolPath, this.offsetPath]) rmSync(f, { force: true });
  }

  /** the sending loop; whatever it throws (the spool unreadable) is reported and retried, never thrown out */
  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.turn();
      } catch (e) {
        this.markDown(`NATS output: ${(e as Error).message}; records wait in the log and the spool`);
        await this.sleep(RETRY_MS);
      }
    }
  }

  /** one step: connect, or send one window, or wait for records */
  private async turn(): Promise<void> {
    if (!this.nc) {
      try {
        await this.connectOnce();
      } catch (e) {
        this.markDown(`NATS ${this.o.url}: ${(e as Error).message}; records are spooled until it answers`);
        await this.sleep(RETRY_MS);
      }
      return;
    }
    const batch = this.batch(WINDOW);
    if (batch.length === 0) {
      await this.idle();
      return;
    }
    // a window in flight at once: the server stores them in the order they were sent on the
    // connection; only a prefix that all succeeded counts as sent, the rest goes again (a
    // copy already stored is dropped by its message id)
    const results = await Promise.allSettled(batch.map((q) => this.publish(q)));
    const failed = results.findIndex((r) => r.status === 'rejected');
    for (const q of failed === -1 ? batch : batch.slice(0, failed)) this.sent(q);
    if (batch.some((q) => q.fromSpool !== undefined)) this.saveOffset();
    if (failed !== -1) {
      const why = (results[failed] as PromiseRejectedResult).reason as Error;
      this.markDown(`NATS ${this.o.url}: a publish failed (${why?.message ?? String(why)}); records are spooled until it returns`);
      this.spill();
      await this.sleep(RETRY_MS);
    }
  }

  private async publish(q: Queued): Promise<void> {
    const js = this.js;
    if (!js) throw new Error('not connected');
    const line = q.line.endsWith('\n') ? q.line.slice(0, -1) : q.line;
    // the kind is read here, off the path that wrote the record
    const kind = String((JSON.parse(line) as { kind?: unknown }).kind);
    const h = headers();
    h.set('Redline-Host', this.o.host);
    h.set('Redline-Seq', String(q.seq));
    const ack = await js.publish(`${this.o.prefix}.${subjectToken(this.o.host)}.${subjectToken(kind)}`, line, { msgID: q.hash, headers: h, timeout: PUBLISH_TIMEOUT_MS });
    if (ack.duplicate) this.counts.resent++;
    if (this.down) {
      this.down = false;
      this.report('recovered', `NATS ${this.o.url} answers again; ${this.spoolSize - this.readAt} bytes of spooled records go out in order`);
    }
  }

  /** the oldest records not yet sent, at most `max`: the memory queue comes before the spool (the spool is empty while the queue is used) */
  private batch(max: number): Queued[] {
    if (this.mem.length > 0) return this.mem.slice(0, max);
    const out: Queued[] = [];
    let at = this.readAt;
    while (out.length < max && at < this.spoolSize) {
      const r = this.readSpoolLine(at);
      if (r.q) out.push(r.q);
      else if (out.length === 0) this.readAt = r.next; // a torn line at the front: past it
      at = r.next;
    }
    return out;
  }

  private sent(r: Queued): void {
    this.counts.published++;
    if (r.fromSpool === undefined) {
      this.mem.shift();
      return;
    }
    this.readAt = r.fromSpool;
    if (this.readAt >= this.spoolSize) {
      // all of it out: start over empty
      ftruncateSync(this.spoolFd, 0);
      this.spoolSize = 0;
      this.readAt = 0;
    }
  }

  /** the memory queue to the spool (NATS is away, or the daemon stops), in order */
  private spill(): void {
    if (this.mem.length === 0) return;
    const lines = this.mem.map((m) => m.line);
    this.mem = [];
    // the spool is empty whenever the memory queue is used: order holds
    this.spool(lines);
  }

  private spool(lines: string[]): void {
    if (this.spoolFd < 0) return;
    for (const line of lines) {
      const data = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
      if (this.spoolSize + data.length > this.o.spoolMaxBytes) {
        this.counts.overflowed++;
        if (this.overflowed++ === 0) this.report('degraded', `the NATS spool ${this.spoolPath} is full (${this.o.spoolMaxBytes} bytes): records from here on stay in the audit log only and will not reach the stream`);
        continue;
      }
      try {
        writeSync(this.spoolFd, data, 0, data.length, this.spoolSize);
        this.spoolSize += data.length;
        this.counts.spooled++;
      } catch (e) {
        this.counts.overflowed++;
        if (this.overflowed++ === 0) this.report('degraded', `the NATS spool ${this.spoolPath} cannot be written (${(e as Error).message}): records stay in the audit log only`);
      }
    }
  }

  /** the spool's line at byte `at`, and where the next starts; q is null for a torn line */
  private readSpoolLine(at: number): { q: Queued | null; next: number } {
    // records are a few KB; read until the newline
    let chunk = 4096;
    for (;;) {
      const len = Math.min(chunk, this.spoolSize - at);
      const buf = Buffer.alloc(len);
      readSync(this.spoolFd, buf, 0, len, at);
      const nl = buf.indexOf(0x0a);
      if (nl >= 0) {
        const line = buf.subarray(0, nl).toString('utf8');
        const end = at + nl + 1;
        try {
          const r = JSON.parse(line) as { seq?: unknown; hash?: unknown };
          return { q: { line, seq: Number(r.seq), hash: String(r.hash), fromSpool: end }, next: end };
        } catch {
          // a torn line (the daemon was killed mid-spool): skipped, the log still has the record
          return { q: null, next: end };
        }
      }
      // no newline before the end: a torn last line
      if (len >= this.spoolSize - at) return { q: null, next: this.spoolSize };
      chunk *= 4;
    }
  }

  private openSpool(): void {
    this.spoolFd = openSync(this.spoolPath, 'a+', 0o600);
    this.spoolSize = fstatSync(this.spoolFd).size;
    // an earlier run's records not yet sent go first
    if (existsSync(this.offsetPath)) {
      const at = Number(readFileSync(this.offsetPath, 'utf8'));
      this.readAt = Number.isInteger(at) && at >= 0 && at <= this.spoolSize ? at : 0;
    }
  }

  private saveOffset(): void {
    try {
      writeFileSync(this.offsetPath, String(this.readAt), { mode: 0o600 });
    } catch {
      // a resend after a restart is de-duplicated by the server: losing the offset costs time only
    }
  }

  private closeSpool(): void {
    if (this.spoolFd < 0) return;
    closeSync(this.spoolFd);
    this.spoolFd = -1;
  }

  private markDown(summary: string): void {
    if (this.down) return;
    this.down = true;
    this.spill();
    this.report('degraded', summary);
  }

  private idle(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = null;
        resolve();
      };
      if (this.stopped || this.mem.length > 0 || this.spoolSize > this.readAt) this.wake();
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        if (!this.stopped) return;
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }
}
