// The hash-chained audit log: one NDJSON line per record, written synchronously so that
// a record is on disk before the action it describes is reported (DESIGN.md, "One
// event's way"). A failing disk must never break the caller's path (freeze, kill):
// append() never throws; records that could not be written wait in memory, in order,
// with their seq already assigned, and go out as soon as the disk takes them again.
//
// Each record is encoded once: its line is the canonical JSON the hash covers (keys sorted,
// `hash` added last), so what a reader parses back is exactly what was hashed. (pino
// formatted the line before, a second serialization of every record on the hot path; the
// fd is ours, so exactly which bytes reached the file is known, a partial write included.)

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Chain, type ChainHead, type ChainRecord, type Sealed } from './chain.js';
import { lastRecord } from './log-head.js';
import { emitEach } from '../emit-each.js';
import { makeSeal, type SigningKey } from './seal.js';
import { makeDirs } from '../make-dirs.js';

export interface AuditRecord extends ChainRecord {
  kind: string;
}

export interface AuditLogOptions {
  /** replaces the file write (tests, other sinks): must write the whole line or throw */
  write?: (line: string) => void;
  /** how often pending records are retried while the sink fails; default 1000 ms */
  retryMs?: number;
  /**
   * the group that may read the log (0640 to it); by default it is 0600, its owner's alone: a
   * subject that can read the log learns which of its steps were seen
   */
  group?: number;
  /** --sign-key: append a signed seal record over the chain's head (seal.ts) */
  seal?: SealPolicy;
}

export interface SealPolicy {
  key: SigningKey;
  /** a seal at the latest after this many records */
  everyRecords: number;
  /** and after this long, when anything was written since the last one */
  everyMs: number;
}

/** records after which a seal follows at once (a daemon's start and stop, a trial's end): the seal's reason */
function milestone(fields: { kind: string; phase?: unknown }): string | null {
  if (fields.kind === 'trial') return fields.phase === 'end' ? 'trial-end' : null;
  return fields.kind === 'daemon' && (fields.phase === 'start' || fields.phase === 'stop') ? fields.phase : null;
}

interface AuditLogEvents {
  /** a record now in the file (its NDJSON line; the record parsed from it on demand) */
  record: [Sealed<AuditRecord>];
  error: [Error];
}

interface Pending {
  sealed: Sealed<AuditRecord>;
  data: Buffer;
  /** bytes of `data` already in the file: a partial write resumes, never repeats */
  written: number;
}

function errnoCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * The log's file readable by its owner alone (0600), or also by `group` (0640): whatever the
 * umask, and a file an older version left 0644 included.
 */
function restrict(fd: number, group: number | undefined): void {
  if (group !== undefined) fs.fchownSync(fd, -1, group);
  fs.fchmodSync(fd, group === undefined ? 0o600 : 0o640);
}

export class AuditLog extends EventEmitter<AuditLogEvents> {
  readonly path: string;
  readonly #chain: Chain;
  readonly #inject: ((line: string) => void) | undefined;
  readonly #retryMs: number;
  readonly #group: number | undefined;
  #fd = -1;
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** errno code of the current outage; null while writes succeed */
  #failing: string | null = null;
  #draining = false;
  #closed = false;
  #tornTail = false;
  readonly #seal: SealPolicy | undefined;
  /** records appended since the last seal */
  #unsealed = 0;
  #lastSeal: Sealed<AuditRecord> | null = null;
  #sealTimer: NodeJS.Timeout | undefined;

  private constructor(file: string, start: ChainHead | null, options: AuditLogOptions, fd: number) {
    super();
    this.path = file;
    this.#chain = new Chain(start ?? undefined);
    this.#inject = options.write;
    this.#retryMs = options.retryMs ?? 1000;
    this.#group = options.group;
    this.#fd = fd;
    this.#seal = options.seal;
    if (this.#seal) {
      this.#sealTimer = setInterval(() => {
        if (this.#unsealed > 0) this.seal('interval');
      }, this.#seal.everyMs);
      this.#sealTimer.unref();
    }
  }

  /**
   * Opens (creating folders as needed) and continues the chain after the file's last
   * parseable record. Throws when the file cannot be opened: that is a startup
   * configuration problem, unlike a write failure later on.
   */
  static open(file: string, options: AuditLogOptions = {}): AuditLog {
    let fd = -1;
    try {
      if (options.write) {
        // The sink is elsewhere; the file, if any, only says where the chain stands.
        if (!fs.existsSync(file)) return new AuditLog(file, null, options, -1);
        fd = fs.openSync(file, 'r');
        const start = lastRecord(fd, fs.fstatSync(fd).size);
        fs.closeSync(fd);
        return new AuditLog(file, start, options, -1);
      }
      makeDirs(path.dirname(file));
      fd = fs.openSync(file, 'a+', 0o600);
      restrict(fd, options.group);
      const size = fs.fstatSync(fd).size;
      const start = size > 0 ? lastRecord(fd, size) : null;
      const last = Buffer.alloc(1);
      if (size > 0) fs.readSync(fd, last, 0, 1, size - 1);
      const log = new AuditLog(file, start, options, fd);
      // A line torn by a crash must not swallow the next record: the next write ends it
      // first, and `redline audit` reports it as the bad line it is.
      log.#tornTail = size > 0 && last[0] !== 0x0a;
      return log;
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      const err = asError(e);
      throw new Error(`audit log ${file}: cannot open (${err.message}); check the path and its permissions`, {
        cause: err,
      });
    }
  }

  /**
   * Seals and writes the record now; never throws (see the top of this file). Returns its
   * seq, hash and line; `.record` parses the line back when a caller wants the record.
   */
  append<F extends { kind: string }>(fields: F): Sealed<AuditRecord> {
    let sealed: Sealed<AuditRecord>;
    try {
      sealed = this.#chain.sealLine(fields) as Sealed<AuditRecord>;
    } catch (e) {
      // a cyclic object: keep a trace of the attempt instead of throwing at the caller
      sealed = this.#chain.sealLine({ kind: String(fields.kind), unserializable: e instanceof Error ? e.message : String(e) }) as Sealed<AuditRecord>;
    }
    // a seal due after this record is made now, so that it is the very next record: a
    // listener that appends as the record goes out must not come between them
    let seal: Sealed<AuditRecord> | null = null;
    if (this.#seal) {
      this.#unsealed++;
      const why = milestone(fields) ?? (this.#unsealed >= this.#seal.everyRecords ? 'records' : null);
      if (why) seal = this.#sealNow(why);
    }
    // both queued before either is written: the pending list is in seq order
    this.#enqueue(sealed);
    if (seal) this.#enqueue(seal);
    this.#drain();
    return sealed;
  }

  #enqueue(sealed: Sealed<AuditRecord>): void {
    const data = Buffer.from(this.#tornTail ? `\n${sealed.line}` : sealed.line, 'utf8');
    this.#tornTail = false;
    this.#pending.push({ sealed, data, written: 0 });
  }

  /**
   * With a signing key: a seal record over the head now (the records before it are then
   * covered); without one, nothing. Never throws.
   */
  seal(reason: string): void {
    const s = this.#sealNow(reason);
    if (!s) return;
    this.#enqueue(s);
    this.#drain();
  }

  #sealNow(reason: string): Sealed<AuditRecord> | null {
    const policy = this.#seal;
    if (!policy || this.#closed) return null;
    try {
      const sealed = this.#chain.sealLine(makeSeal(policy.key, this.head(), reason, policy.everyRecords)) as Sealed<AuditRecord>;
      this.#unsealed = 0;
      this.#lastSeal = sealed;
      return sealed;
    } catch (e) {
      this.#report(e);
      return null;
    }
  }

  /** the last seal appended (the websocket heartbeat carries it off the host); null: none */
  lastSeal(): Sealed<AuditRecord> | null {
    return this.#lastSeal;
  }

  /** tries to write every pending record, in order; true when none is left */
  flush(): boolean {
    return this.#drain();
  }

  /** the last sealed record (written or still pending); seq -1 when none */
  head(): ChainHead {
    return { seq: this.#chain.seq, hash: this.#chain.head };
  }

  /** the NDJSON lines not yet on disk, in order (for a last-resort dump at exit) */
  pendingLines(): string[] {
    return this.#pending.map((p) => p.sealed.line);
  }

  pendingCount(): number {
    return this.#pending.length;
  }

  /** opens the same path again (after log rotation); the chain just continues */
  reopen(): void {
    if (this.#closed) return;
    // the old file ends sealed: audited on its own, nothing in it is an unsealed tail
    if (this.#unsealed > 0) this.seal('rotation');
    if (!this.#inject) {
      this.#closeFd();
      // A record half-written to the old file starts over in the new one, which then
      // verifies on its own; the old file ends with a torn line either way.
      const head = this.#pending[0];
      if (head) head.written = 0;
      try {
        this.#openFd();
      } catch (e) {
        this.#fail(e);
        this.#armTimer();
        return;
      }
    }
    this.#drain();
  }

  /** a last flush, then releases the file; what is still pending stays in pendingCount() */
  close(): void {
    if (this.#closed) return;
    if (this.#unsealed > 0) this.seal('stop');
    if (this.#sealTimer) clearInterval(this.#sealTimer);
    this.#drain();
    this.#closed = true;
    this.#disarmTimer();
    this.#closeFd();
  }

  #drain(): boolean {
    // An error or record listener that appends lands here again; the outer loop writes
    // its record, so that listeners see records in seq order.
    if (this.#draining) return false;
    this.#draining = true;
    try {
      while (this.#pending.length > 0) {
        const p = this.#pending[0] as Pending;
        try {
          this.#writeOut(p);
        } catch (e) {
          this.#fail(e);
          this.#armTimer();
          return false;
        }
        this.#pending.shift();
        this.#failing = null;
        this.#emitRecord(p.sealed);
      }
      this.#disarmTimer();
      return true;
    } finally {
      this.#draining = false;
    }
  }

  #writeOut(p: Pending): void {
    if (this.#closed) {
      throw Object.assign(new Error('audit log is closed'), { code: 'ECLOSED' });
    }
    if (this.#inject) {
      this.#inject(p.sealed.line);
      p.written = p.data.length;
      return;
    }
    if (this.#fd < 0) this.#openFd();
    while (p.written < p.data.length) {
      const n = fs.writeSync(this.#fd, p.data, p.written, p.data.length - p.written);
      if (n <= 0) throw Object.assign(new Error('audit log: write made no progress'), { code: 'EIO' });
      p.written += n;
    }
  }

  #openFd(): void {
    makeDirs(path.dirname(this.path));
    this.#fd = fs.openSync(this.path, 'a', 0o600);
    restrict(this.#fd, this.#group);
  }

  #closeFd(): void {
    if (this.#fd < 0) return;
    try {
      fs.closeSync(this.#fd);
    } catch {
      // already gone (EBADF): nothing left to release
    }
    this.#fd = -1;
  }

  // Said once per outage (and again if the cause changes), not per record: an error
  // listener that logs a monitor.degraded record would otherwise feed itself.
  #fail(e: unknown): void {
    const code = errnoCode(e);
    if (code === this.#failing) return;
    this.#failing = code;
    this.#report(e);
  }

  #report(e: unknown): void {
    if (this.listenerCount('error') === 0) return;
    try {
      this.emit('error', asError(e));
    } catch {
      // a throwing error listener has nowhere left to report to; the caller's path wins
    }
  }

  // Each listener on its own, so one that throws neither reaches the caller nor keeps
  // the record from the other outputs.
  #emitRecord(sealed: Sealed<AuditRecord>): void {
    emitEach(this, 'record', [sealed], (e) => this.#report(e));
  }

  #armTimer(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => this.#drain(), this.#retryMs);
    this.#timer.unref();
  }

  #disarmTimer(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
