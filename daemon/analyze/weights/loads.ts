// Loads by bytes: how much of a model each process has mapped or read, counted in the kernel
// (file_bytes events) whatever the read path — read, pread, readv, sendfile, splice,
// copy_file_range, mmap. A process that holds at least the configured share of a model (its
// registered files in one folder, shards summed) is a loader:
// - mapped (or mapped and read): at once — a mapping is what a server keeps;
// - read only: when it is still alive 2 s after crossing the share, or listens before that, and
//   did not write as many bytes as it read (a checksum tool exits, a copier writes; a server
//   reads and stays, and listens).
// The verdict needs no look at /proc at the time: a daemon that falls behind judges late, but
// on the kernel's own times.
//
// The same counts make derived copies: a process that read the share and wrote at least a
// quarter as many bytes to a file or a socket, with no copy of the weights found by content
// among what it wrote, wrote them out in another form (compressed, encrypted, encoded, sent).
import type { FileBytesEvent } from '../../events.js';
import type { WeightFile, WeightRegistry } from '../../sensors/weights/registry.js';
import type { Destination } from '../../enrich/destination.js';
import { EarlyWrites } from './early-writes.js';
import { CLASS, type CarryingPipe, isAlive, largestDest, type Load, type LoadHow, modelOf, type ProcessKey, type Reader, topWeight } from './reader.js';

export type { Load, LoadHow, ProcessKey } from './reader.js';
export type { Destination } from '../../enrich/destination.js';

/** a reader is a loader only if it is still alive this long after crossing the share */
export const READ_ALIVE_MS = 2000;
/** written bytes (files and sockets) of at least this share of the bytes read make a derived copy */
export const DERIVED_SHARE = 0.25;
// a content match of what it wrote, if there is one, lands well within this
const DERIVED_SETTLE_MS = 1500;
/**
 * A derived copy in progress: a reader that has read this much of the weights and written as
 * much (and a quarter of what it read) to a file or socket whose content matched nothing is
 * reported at once, unconfirmed; the share crossed later confirms it (the kernel reports a
 * reader's reads of the weights in steps of this size: daemon/sensors/ebpf/loader/bytes.bpf.c)
 */
export const EARLY_DERIVED_BYTES = 16 << 20;

export interface Derived {
  key: ProcessKey;
  pid: number;
  comm: string;
  weight: WeightFile;
  read: number;
  written: number;
  dest: Destination;
  outside: boolean;
  time: number;
  /** it read the weights through a pipe, from this pid */
  pipedFrom: number | null;
  /** reported before the share was crossed: unconfirmed (`in_progress`), or the confirmation of one that was */
  progress?: 'in_progress' | 'confirmed';
}
// a process that wrote at least this share of what it read is copying, not loading
const COPIER_SHARE = 0.5;
/** pipes remembered as carrying the weights; the oldest go first */
const MAX_PIPES = 256;
/** listening processes remembered; the oldest go first */
const MAX_LISTENING = 4096;
/** pipes followed back from a reader to the one that read the file */
const MAX_PIPE_HOPS = 8;

export class LoadAccounting {
  private readonly readers = new Map<ProcessKey, Reader>();
  /** pids of the readers, for a cheap first test of a host-wide line */
  private readonly pids = new Set<number>();
  /** pipes carrying the weights, by dev:ino */
  private readonly pipes = new Map<string, CarryingPipe>();
  /** writes by processes not (yet) readers of the weights, replayed when they become one */
  private readonly early = new EarlyWrites();
  /** processes seen listening (a reader among them past the share is a loader at once) */
  private readonly listening = new Set<ProcessKey>();

  constructor(
    private readonly registry: WeightRegistry,
    /** the share of a model that makes a load (0–1) */
    private readonly share: number,
    private readonly found: (l: Load) => void,
    private readonly derived: (d: Derived) => void = () => undefined,
    /** names a destination while its writer is alive (path, or the socket's peer) */
    private readonly name: (pid: number, d: Destination) => void = () => undefined,
    /** a content match of this file is still due or running */
    private readonly matching: (dev: number, ino: number) => boolean = () => false,
    /** a derived copy reported in progress was a plain copy after all (its content matched) */
    private readonly withdrawn: (d: Derived) => void = () => undefined,
  ) {}

  get size(): number {
    return this.readers.size;
  }

  has(key: ProcessKey): boolean {
    return this.readers.has(key);
  }

  hasPid(pid: number): boolean {
    return this.pids.has(pid);
  }

  /** bytes a process read or mapped from a registered weight file */
  bytes(ev: FileBytesEvent, key: ProcessKey, w: WeightFile): void {
    let r = this.readers.get(key);
    this.pids.add(ev.pid);
    if (!r) this.readers.set(key, (r = { pid: ev.pid, comm: ev.comm ?? '', files: new Map(), classes: new Set(), written: 0, outside: !ev.subject, pending: null, done: false, dests: new Map(), piped: 0, pipedFrom: null, upstream: null, copied: false, derivedAt: null, derivedSeen: 0, derivedDone: false, earlyAt: null, gone: false }));
    if (ev.subject) r.outside = false;
    let f = r.files.get(w);
    if (!f) r.files.set(w, (f = { weight: w, read: 0, mapped: 0 }));
    const cls = CLASS[ev.op] ?? 'read';
    r.classes.add(cls);
    if (cls === 'mmap') f.mapped = Math.max(f.mapped, ev.bytes);
    else f.read += ev.bytes;
    for (const e of this.early.take(key)) this.wrote(key, e);
    this.judgeEarly(key, r, ev.time);
    if (r.done) return;
    const load = this.measure(r, w, ev.time);
    if (load.share < this.share) return;
    if (r.classes.has('mmap')) return this.decide(r, load);
    r.pending ??= load;
    if (this.listening.has(key)) this.settle(r);
  }

  /** is this pipe carrying the weights (a reader of them wrote into it)? */
  carries(dev: number, ino: number): boolean {
    return this.pipes.has(`${dev}:${ino}`);
  }

  /**
   * Bytes read from a pipe: from one carrying the weights they are the weights' bytes, read
   * through another process (`tar cz` pipes to gzip, `cat w | openssl enc`): the reader is
   * judged like one that read the file (a load, or with what it writes a derived copy).
   */
  fromPipe(ev: FileBytesEvent, key: ProcessKey): boolean {
    const p = this.pipes.get(`${ev.dev}:${ev.ino}`);
    if (!p || p.from === ev.pid) return false;
    this.bytes(ev, key, p.weight);
    const r = this.readers.get(key);
    if (r) {
      r.pipedFrom ??= p.from;
      r.upstream ??= p.reader;
      this.judgeDerived(r, ev.time);
      this.judgeEarly(key, r, ev.time);
    }
    return true;
  }

  /** bytes a reader of the weights wrote to a file, a socket or a pipe: a copier, a derived copy, or passing them on */
  wrote(key: ProcessKey, ev: FileBytesEvent): void {
    const r = this.readers.get(key);
    if (!r) {
      this.early.keep(key, ev);
      return;
    }
    if (ev.pipe) {
      r.piped += ev.bytes;
      const k = `${ev.dev}:${ev.ino}`;
      const top = [...r.files.values()].sort((a, b) => b.read + b.mapped - (a.read + a.mapped))[0];
      if (!top || this.pipes.has(k)) return;
      this.pipes.set(k, { weight: top.weight, from: r.pid, reader: r });
      if (this.pipes.size > MAX_PIPES) this.pipes.delete(this.pipes.keys().next().value as string);
      return;
    }
    r.written += ev.bytes;
    const k = `${ev.dev}:${ev.ino}`;
    let d = r.dests.get(k);
    if (!d && r.dests.size < 64) {
      r.dests.set(k, (d = { dev: ev.dev, ino: ev.ino, fd: ev.fd, socket: ev.socket, bytes: 0, path: null, addr: null, port: null }));
      this.name(ev.pid, d);
    }
    if (d) d.bytes += ev.bytes;
    this.judgeDerived(r, ev.time);
    this.judgeEarly(key, r, ev.time);
  }

  /**
   * Enough of the weights read, and as much written in a form no content match found: a
   * derived copy in progress, reported now (a 1 GiB model XORed at 200 MB/s is otherwise
   * flagged only once half of it is read). The share crossed confirms it; a content match of
   * what it wrote withdraws it (a plain copy, which its match names).
   */
  private judgeEarly(key: ProcessKey, r: Reader, time: number): void {
    if (r.copied || r.earlyAt !== null || r.derivedAt !== null || r.derivedDone || r.written < EARLY_DERIVED_BYTES) return;
    const read = this.readBytes(r);
    if (read < EARLY_DERIVED_BYTES || r.written < DERIVED_SHARE * read) return;
    const dest = largestDest(r);
    // a file whose content is still to be looked at may be a plain copy: its match names it
    if (!dest || (!dest.socket && this.matching(dest.dev, dest.ino))) return;
    const w = topWeight(r);
    if (!w) return;
    r.earlyAt = time;
    this.derived({ key, pid: r.pid, comm: r.comm, weight: w, read, written: r.written, dest, outside: r.outside, time, pipedFrom: r.pipedFrom, progress: 'in_progress' });
  }

  /** it holds a share of a model and wrote about as much as it read: a derived copy, once its content match has had its chance */
  private judgeDerived(r: Reader, time: number): void {
    if (r.copied || r.derivedDone || r.derivedAt !== null || r.written === 0) return;
    const read = this.readBytes(r);
    if (this.bestShare(r) >= this.share && r.written >= DERIVED_SHARE * read) {
      r.derivedAt = time;
      // the wait for a content match runs on the daemon's clock: a daemon behind the kernel
      // would otherwise judge before the match of what was written could land
      r.derivedSeen = Date.now();
    }
  }

  /** a copy of the weights was found by content among what this process wrote */
  copied(key: ProcessKey): void {
    const r = this.readers.get(key);
    if (!r) return;
    r.copied = true;
    // a copier reads the weights whole too: not a server
    if (r.pending) r.pending = null;
    // reported as a derived copy in progress, and its content turned out to be the weights'
    if (r.earlyAt !== null && !r.derivedDone) {
      r.derivedDone = true;
      const dest = largestDest(r);
      const w = topWeight(r);
      if (dest && w) this.withdrawn({ key, pid: r.pid, comm: r.comm, weight: w, read: this.readBytes(r), written: r.written, dest, outside: r.outside, time: r.earlyAt, pipedFrom: r.pipedFrom });
    }
  }

  /** a derived copy flagged and not yet decided (its content match may still rule it out) */
  busy(): boolean {
    for (const r of this.readers.values()) if (r.derivedAt !== null && !r.derivedDone) return true;
    return false;
  }

  /**
   * Readers past the share that have lived long enough by now, and are still there. A reader
   * whose process is gone without an exit seen (one outside the subject: its exit is not
   * traced) is dropped; gone, it serves nothing.
   */
  tick(now: number): void {
    for (const [key, r] of this.readers) {
      if (r.derivedAt === null || r.derivedDone || now - r.derivedSeen < DERIVED_SETTLE_MS) continue;
      if ([...r.dests.values()].some((d) => !d.socket && this.matching(d.dev, d.ino))) continue;
      this.settleDerived(key, r);
      if (r.gone) this.forget(key);
    }
    for (const [key, r] of this.readers) {
      if (!r.outside && (!r.pending || r.done || now - r.pending.time < READ_ALIVE_MS)) continue;
      const alive = isAlive(key);
      if (!alive && r.outside) this.forget(key);
      else if (alive && r.pending && !r.done && now - r.pending.time >= READ_ALIVE_MS) this.settle(r);
    }
  }

  /**
   * The process listens: a reader past the share that opens a port is serving what it read,
   * not checksumming it. It is judged now, not 2 s after the share was crossed: in enforce
   * mode it is frozen before its first answer.
   */
  listened(key: ProcessKey): void {
    // (a server often listens before it loads, and the listen may reach userspace before the
    // bytes that cross the share: those are judged at once when they come, in bytes())
    this.listening.add(key);
    if (this.listening.size > MAX_LISTENING) this.listening.delete(this.listening.values().next().value as string);
    const r = this.readers.get(key);
    if (r?.pending && !r.done) this.settle(r);
  }

  /** the process exited at `time` (kernel time): a pending reader is judged by how long it lived */
  exited(key: ProcessKey, time: number): void {
    this.listening.delete(key);
    this.early.forget(key);
    const r = this.readers.get(key);
    if (!r) return;
    if (r.pending && !r.done && time - r.pending.time >= READ_ALIVE_MS) this.settle(r);
    r.pending = null;
    // a derived copy waits for the content match of what it wrote, which may still be running
    if (r.derivedAt !== null && !r.derivedDone) r.gone = true;
    else this.forget(key);
  }

  forget(key: ProcessKey): void {
    this.listening.delete(key);
    this.early.forget(key);
    const r = this.readers.get(key);
    if (!r) return;
    this.readers.delete(key);
    this.pids.delete(r.pid);
  }

  private settleDerived(key: ProcessKey, r: Reader): void {
    r.derivedDone = true;
    if (r.copied) return;
    const dest = largestDest(r);
    const w = topWeight(r);
    if (!dest || !w || (r.derivedAt ?? 0) === 0) return;
    this.derived({ key, pid: r.pid, comm: r.comm, weight: w, read: this.readBytes(r), written: r.written, dest, outside: r.outside, time: r.derivedAt ?? 0, pipedFrom: r.pipedFrom, ...(r.earlyAt !== null ? { progress: 'confirmed' as const } : {}) });
  }

  /**
   * Bytes of the weights it read; one that read them from a pipe has at least what the pipe's
   * writer had (through any number of pipes: `tar c | gzip | nc`), since each pipe is known
   * only from its writer's first write step and the first steps through it go uncounted.
   */
  private readBytes(r: Reader, depth = 0): number {
    let n = 0;
    for (const f of r.files.values()) n += Math.min(f.weight.fp.size, f.read + f.mapped);
    return r.upstream && depth < MAX_PIPE_HOPS ? Math.max(n, this.readBytes(r.upstream, depth + 1)) : n;
  }

  /** the largest share of any one model this reader holds (through pipes: at least its upstream's) */
  private bestShare(r: Reader, depth = 0): number {
    let best = 0;
    for (const f of r.files.values()) best = Math.max(best, this.measure(r, f.weight, 0).share);
    return r.upstream && depth < MAX_PIPE_HOPS ? Math.max(best, this.bestShare(r.upstream, depth + 1)) : best;
  }

  private settle(r: Reader): void {
    const load = r.pending;
    if (!load) return;
    const read = [...r.files.values()].reduce((n, f) => n + f.read, 0);
    // it wrote about as much as it read: a copy (the candidates judge it), not a server
    if (r.copied || r.written + r.piped >= COPIER_SHARE * read) {
      r.pending = null;
      r.done = true;
      return;
    }
    this.decide(r, load);
  }

  private decide(r: Reader, load: Load): void {
    r.done = true;
    r.pending = null;
    this.found(load);
  }

  /**
   * The reader's bytes of the model `w` belongs to, over the model's registered bytes. A
   * model is the registered files of one format in one folder: the shards of a checkpoint
   * (model-00001-of-00004.safetensors …), not the same weights kept in another format beside
   * them (a pytorch_model.bin or a .gguf next to the safetensors).
   */
  private measure(r: Reader, w: WeightFile, time: number): Load {
    const model = modelOf(w);
    let total = 0;
    for (const f of this.registry.files()) if (modelOf(f) === model) total += f.fp.size;
    let bytes = 0;
    for (const f of r.files.values()) {
      if (modelOf(f.weight) === model) bytes += Math.min(f.weight.fp.size, f.read + f.mapped);
    }
    const how: LoadHow = r.classes.size > 1 ? 'mixed' : ([...r.classes][0] ?? 'read');
    return { pid: r.pid, comm: r.comm, weight: w, how, bytes, share: total > 0 ? bytes / total : 0, outside: r.outside, time };
  }
}
