// The weights sensor: turns open/link events of subject processes (their paths already
// named by the ingress) and the kernel's byte counts of every process (file_bytes) into
// weights events. The jobs are apart: candidate copies (candidates.ts: files being written,
// matched by content), loads and derived copies (loads.ts: bytes of a model mapped, read and
// written out), links (links.ts) and names (here). It is an analyzer: each call returns the
// events it derives (judged after the event that caused them); later finds go out as 'event'. What it keeps per process is keyed by the process's
// identity (pid + start time), so a pid the kernel hands to a new process inherits nothing.
import { EventEmitter } from 'node:events';
import { readlinkSync } from 'node:fs';
import type { ConnectEvent, FileBytesEvent, LinkEvent, OpenEvent, SensorEvent } from '../../events.js';
import { type FileStat, statOf } from '../../enrich/paths.js';
import { isLoopback } from '../../sensors/ports/parse-net.js';
import type { SensorHealth } from '../../sensors/sensor.js';
import { type Analyzer, Derivations } from '../analyzer.js';
import { type Candidate, CandidateCopies } from './candidates.js';
import { fingerprint } from '../../sensors/weights/fingerprint.js';
import { type Derived, type Load, LoadAccounting } from './loads.js';
import { nameDestination } from '../../enrich/destination.js';
import { fdOnInode, type ParentOf, reachable } from '../../enrich/paths.js';
import { linkedCopy } from './links.js';
import { SubjectWrites } from './ties.js';
import type { CandidateMatch } from '../../sensors/weights/match.js';
import type { WeightFile, WeightRegistry } from '../../sensors/weights/registry.js';

/** a process's identity, `${pid}:${start}` as the process table keys it */
export type ProcessKey = string;

export interface TrackerOptions {
  registry: WeightRegistry;
  /** how often a growing candidate is looked at */
  pollMs?: number;
  /** a candidate that has not grown for this long is done */
  idleMs?: number;
  /** the share of a model a process must map or read to be loading it (default 0.5) */
  loadShare?: number;
  maxCandidates?: number;
  /**
   * a file found holding the weights when something read or mapped it, last written at or after
   * this time (ms), is reported as a copy with no known writer (the poll sensor: a copy made
   * between two passes). Unset (eBPF, which sees every write): such finds only count as loads.
   */
  unseenCopiesSince?: number;
  /** a process's parent (the process table): a name in a mount namespace of its own is reached through it */
  parentOf?: ParentOf;
}

// readers past the share are looked at less often than candidates are sized
const LOAD_CHECK_MS = 250;
// what is known of an exited process is kept this long for events reported after its exit
const EXITED_GRACE_MS = 10_000;

export class WeightsTracker extends EventEmitter implements Analyzer {
  readonly name = 'weights';
  /** what a call derives is returned by it; what comes later (a match, a timer) is emitted */
  private readonly d = new Derivations((ev) => this.emit('event', ev));
  private readonly candidates: CandidateCopies;
  private readonly loads: LoadAccounting;
  /** weight files each process opened for reading: the likely source of what it writes */
  private readonly readers = new Map<ProcessKey, Set<WeightFile>>();
  /** link checks scheduled and not yet run */
  private linkChecks = 0;
  /** processes that exited, with when: their state goes once late events had time to land */
  private exitedAt = new Map<ProcessKey, number>();
  /** inodes written by subject processes and paths of links they made: the watcher leaves these alone */
  private readonly claimedInodes = new Set<string>();
  private readonly claimedPaths = new Set<string>();
  /** files of a registered weight's size already looked at (dev:ino:size) */
  private readonly sizeChecked = new Set<string>();
  /** where subject processes connected, by identity and fd: a derived copy sent names its peer */
  private readonly connections = new Map<string, { addr: string; port: number }>();
  /** files the subject wrote: a replica outside it may be running one as its job */
  private readonly writes = new SubjectWrites();
  private timer: NodeJS.Timeout | null = null;
  private lastLoadCheck = 0;
  private events = 0;
  private readonly pollMs: number;

  constructor(private readonly o: TrackerOptions) {
    super();
    this.pollMs = o.pollMs ?? 20;
    this.candidates = new CandidateCopies(o.registry, {
        sourcesOf: (k) => this.sourcesOf(k),
        matched: (c, m, copy) => this.matched(c, m, copy),
        parentOf: (pid) => this.o.parentOf?.(pid) ?? 0,
        failed: (c, err) => this.emit('trouble', { sensor: this.name, reason: 'failed', detail: `matching ${c.path} against the weights failed (${err.message}): a copy there may be missed` }),
      }, o.idleMs ?? 2000, o.maxCandidates ?? 512);
    this.loads = new LoadAccounting(o.registry, o.loadShare ?? 0.5, (l) => this.loaded(l), (d) => this.derived(d), nameDestination, (dev, ino) => this.candidates.matching(dev, ino), (d) => this.withdrawn(d));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.candidates.stop();
  }

  health(): SensorHealth {
    return { name: this.name, running: true, restarts: 0, lost: 0, events: this.events, detail: `${this.candidates.size} candidates, ${this.loads.size} readers watched` };
  }

  claimed(dev: number, ino: number, path: string): boolean {
    return this.claimedInodes.has(`${dev}:${ino}`) || this.claimedPaths.has(path);
  }

  /** every open/link of a subject process, named by the ingress; `file` is what stat() said of an open */
  observe(ev: OpenEvent | LinkEvent, file: FileStat | null, key: ProcessKey): readonly SensorEvent[] {
    return this.d.collect(() => (ev.type === 'open' ? this.onOpen(ev, file, key) : this.onLink(ev)));
  }

  /**
   * Bytes a process (any on the host) moved through a large file or a socket. Bytes of the
   * weights count towards a load; what a reader of them writes may be a derived copy; a write
   * by a subject process, or by one that read the weights, makes the file a candidate copy
   * (through the writer's fd: it may have no name yet).
   */
  observeBytes(ev: FileBytesEvent, key: ProcessKey): readonly SensorEvent[] {
    return this.d.collect(() => this.onBytes(ev, key));
  }

  private onBytes(ev: FileBytesEvent, key: ProcessKey): void {
    if (ev.write) {
      this.loads.wrote(key, ev);
      this.arm();
    }
    if (ev.pipe) {
      if (!ev.write && this.loads.fromPipe(ev, key)) this.arm();
      return;
    }
    const w = this.o.registry.byInode(ev.dev, ev.ino);
    if (w) {
      if (ev.write) return;
      this.arm();
      return this.loads.bytes(ev, key, w);
    }
    const c = this.candidates.get(ev.dev, ev.ino);
    if (c) {
      if (!ev.write && !c.match && c.pendingBytes.length < 64) c.pendingBytes.push({ ev, key });
      return;
    }
    if (ev.socket) return;
    if (ev.write && !ev.subject && !this.loads.has(key)) return;
    // read or mapped: a file the size of registered weights that nobody was seen writing (a
    // copy made while redline was not looking, or by a writer gone before it could be opened)
    if (!ev.write && !this.unseenCopy(ev)) return;
    const fd = ev.fd >= 0 ? ev.fd : fdOnInode(ev.pid, ev.dev, ev.ino);
    if (fd === null) return;
    let path: string;
    try {
      path = readlinkSync(`/proc/${ev.pid}/fd/${fd}`);
    } catch {
      return;
    }
    if (!path.startsWith('/')) return;
    this.addCandidate(ev.pid, fd, ev.comm ?? '', key, path, { dev: ev.dev, ino: ev.ino }, ev.write ? 'write' : 'read');
    const added = this.candidates.get(ev.dev, ev.ino);
    if (!added) return;
    added.outside = !ev.subject;
    if (!ev.write) added.pendingBytes.push({ ev, key });
  }

  /** a file of a registered weight's size, not looked at before */
  private unseenCopy(ev: FileBytesEvent): boolean {
    const k = `${ev.dev}:${ev.ino}:${ev.size}`;
    if (this.sizeChecked.has(k) || !this.o.registry.hasSize(ev.size)) return false;
    if (this.sizeChecked.size >= 4096) this.sizeChecked.clear();
    this.sizeChecked.add(k);
    return true;
  }

  /** a subject process connected a socket (the peer a derived copy may be sent to) */
  connected(ev: ConnectEvent, key: ProcessKey): void {
    if (this.connections.size >= 4096) {
      const oldest = this.connections.keys().next().value;
      if (oldest !== undefined) this.connections.delete(oldest);
    }
    this.connections.set(`${key}:${ev.fd}`, { addr: ev.addr, port: ev.port });
  }

  /** is this line about the weights (bytes of them, of a copy being made, or written by a process that read them)? */
  concerns(ev: FileBytesEvent): boolean {
    if (ev.pipe) return ev.write ? this.loads.hasPid(ev.pid) : this.loads.carries(ev.dev, ev.ino);
    if (this.o.registry.byInode(ev.dev, ev.ino) !== undefined || this.candidates.get(ev.dev, ev.ino) !== undefined) return true;
    if (ev.write) return this.loads.hasPid(ev.pid);
    return !ev.socket && this.o.registry.hasSize(ev.size) && !this.sizeChecked.has(`${ev.dev}:${ev.ino}:${ev.size}`);
  }

  /** the process began listening: a reader of the weights past the share is a loader now (loads.ts) */
  listened(key: ProcessKey): readonly SensorEvent[] {
    return this.d.collect(() => this.loads.listened(key));
  }

  /**
   * The process exited (at `time`, the kernel's): a reader past the share is judged by how
   * long it lived; what was kept about it goes after a grace period (a copy match may still
   * be reported about it), so the state never outgrows the live processes.
   */
  exited(key: ProcessKey, time = Date.now()): readonly SensorEvent[] {
    const out = this.d.collect(() => this.loads.exited(key, time));
    this.exitedAt.set(key, Date.now());
    if (this.exitedAt.size >= 4096) this.forgetExited(Date.now());
    return out;
  }

  /** a file being written that is held open as a candidate copy (pinned: its writer may go) */
  pinned(dev: number, ino: number): boolean {
    return this.candidates.get(dev, ino) !== undefined;
  }

  /**
   * Work still under way that may yet report: a link to look at, a match running, a
   * candidate big enough for a first look that has not had one, a derived copy not yet decided. (`exec` waits for this
   * before its verdict: a `ln` or `cp` the subject ran last is judged before the trial ends.)
   */
  busy(): boolean {
    return this.linkChecks > 0 || this.registering > 0 || this.candidates.busy() || this.loads.busy();
  }

  /** derived copies being fingerprinted */
  private registering = 0;

  private forgetExited(now: number): void {
    for (const [key, at] of this.exitedAt) {
      if (now - at < EXITED_GRACE_MS) break; // in order of exit
      this.exitedAt.delete(key);
      this.readers.delete(key);
    }
  }

  private emitEvent(ev: SensorEvent): void {
    this.events++;
    this.d.add(ev);
  }

  private onOpen(ev: OpenEvent, st: FileStat | null, key: ProcessKey): void {
    const path = ev.path;
    // by name, even when it is gone already: a job written and moved into a spool at once
    if (ev.write && path) this.writes.wrote(path);
    if (ev.fd < 0 || !st || !st.file) return;
    const w = this.o.registry.byInode(st.dev, st.ino);
    if (w) return this.weightsOpened(ev, key, w, path ?? w.path);
    const pending = this.candidates.get(st.dev, st.ino);
    if (pending && !pending.match && !ev.write && path && pending.pendingReads.length < 32) pending.pendingReads.push({ ev, key, path });
    if (ev.write && path) this.addCandidate(ev.pid, ev.fd, ev.comm ?? '', key, path, st);
  }

  private weightsOpened(ev: OpenEvent, key: ProcessKey, w: WeightFile, path: string): void {
    this.emitEvent({ type: 'weights_open', time: ev.time, pid: ev.pid, comm: ev.comm, path, weight: w.path, generation: w.generation, write: ev.write });
    if (ev.write) return;
    let set = this.readers.get(key);
    if (!set) this.readers.set(key, (set = new Set()));
    set.add(w);
  }

  private addCandidate(pid: number, fd: number, comm: string, writer: ProcessKey, path: string, st: { dev: number; ino: number }, found: 'write' | 'read' = 'write'): void {
    if (found === 'write') this.claimedInodes.add(`${st.dev}:${st.ino}`);
    if (this.candidates.add(pid, fd, comm, writer, path, st, found)) this.arm();
  }

  /** a candidate matched: reported, and what was held back about it (reads, bytes) now counts */
  private matched(c: Candidate, m: CandidateMatch, copy: WeightFile | null): void {
    // a derived copy registered while a look at it was under way matches only itself
    if (m.source.fp.dev === c.dev && m.source.fp.ino === c.ino) return;
    if (c.found === 'write') this.loads.copied(c.key);
    if (copy) {
      for (const r of c.pendingReads.splice(0)) this.weightsOpened(r.ev, r.key, copy, r.path);
      for (const b of c.pendingBytes.splice(0)) this.loads.bytes(b.ev, b.key, copy);
    }
    // found by its reader: who wrote it is not known; the load of it says the rest (and, where
    // writes are not all seen, the copy itself when it was written during the watch)
    if (c.found === 'read') {
      const since = this.o.unseenCopiesSince;
      if (since === undefined || c.mtime < since || !copy) return;
      this.emitEvent({
        type: 'weights_copy', time: Date.now(), pid: 0, comm: '', path: c.path, weight: m.source.path, generation: m.source.generation + 1,
        match: m.kind, bytes: m.bytes, offset: m.offset, seen_by: 'poll', outside_subject: c.outside || undefined,
      });
      return;
    }
    this.emitEvent({
      type: 'weights_copy', time: Date.now(), pid: c.pid, comm: c.comm, path: c.path, weight: m.source.path, generation: m.source.generation + 1,
      match: m.kind, bytes: m.bytes, offset: m.offset, seen_by: 'ebpf', outside_subject: c.outside || undefined,
    });
  }

  private loaded(l: Load): void {
    const job = l.outside ? this.writes.tieOf(l.pid) : null;
    this.emitEvent({
      type: 'weights_load', time: l.time, pid: l.pid, comm: l.comm, path: l.weight.path, weight: l.weight.path, generation: l.weight.generation,
      how: l.how, bytes: l.bytes, share: Math.round(l.share * 1000) / 1000, outside_subject: l.outside || undefined, ...job,
    });
  }

  private derived(d: Derived): void {
    // a file not named while its writer lived may be known by its inode still
    const known = this.candidates.get(d.dest.dev, d.dest.ino)?.path ?? this.o.registry.byInode(d.dest.dev, d.dest.ino)?.path;
    const peer = d.dest.socket && d.dest.addr === null ? this.connections.get(`${d.key}:${d.dest.fd}`) : undefined;
    if (peer) {
      d.dest.addr = peer.addr;
      d.dest.port = peer.port;
    }
    const where = d.dest.socket ? (d.dest.addr === null ? `socket:[${d.dest.ino}]` : `${d.dest.addr}:${d.dest.port}`) : (d.dest.path ?? known ?? `inode ${d.dest.dev}:${d.dest.ino}`);
    this.emitEvent({
      type: 'weights_copy', time: d.time, pid: d.pid, comm: d.comm, path: where, weight: d.weight.path, generation: d.weight.generation + 1,
      match: 'derived', bytes: d.written, read_bytes: d.read, offset: 0, seen_by: 'ebpf', outside_subject: d.outside || undefined, piped_from: d.pipedFrom ?? undefined,
      ...(d.dest.socket && d.dest.addr !== null ? { dest_addr: d.dest.addr, dest_port: d.dest.port ?? 0, loopback: isLoopback(d.dest.addr) } : {}),
      ...(d.progress === 'in_progress' ? { in_progress: true } : d.progress === 'confirmed' ? { confirmed: true } : {}),
    });
    // (registered as weights of the next generation once whole: not while it is being written)
    if (!d.dest.socket && d.progress !== 'in_progress') void this.registerDerived(d, where);
  }

  /** a derived copy reported in progress matched by content after all: the copy's own event names it */
  private withdrawn(d: Derived): void {
    const where = d.dest.socket ? (d.dest.addr === null ? `socket:[${d.dest.ino}]` : `${d.dest.addr}:${d.dest.port}`) : (d.dest.path ?? this.candidates.get(d.dest.dev, d.dest.ino)?.path ?? `inode ${d.dest.dev}:${d.dest.ino}`);
    this.emitEvent({ type: 'weights_withdrawn', time: Date.now(), pid: d.pid, comm: d.comm, path: where, weight: d.weight.path, generation: d.weight.generation + 1, reason: 'content-match' });
  }

  /**
   * A derived copy in a file (a converted, quantized, encoded model) is weights of the next
   * generation too: fingerprinted and registered, so a process that loads it is a replica and
   * a copy of it is a copy. What was read of it before it was known counts now, as for a copy
   * matched by content.
   */
  private async registerDerived(d: Derived, path: string): Promise<void> {
    if (this.o.registry.byInode(d.dest.dev, d.dest.ino)) return;
    const c = this.candidates.get(d.dest.dev, d.dest.ino);
    this.registering++;
    try {
      // through the candidate's own fd where it is held: renamed or unlinked, it is still there
      const fp = await fingerprint(c ? `/proc/self/fd/${c.own}` : path);
      if (fp.dev !== d.dest.dev || fp.ino !== d.dest.ino || this.o.registry.byInode(fp.dev, fp.ino)) return;
      const copy = this.o.registry.addCopy(c?.path ?? path, fp, d.weight, 'derived');
      if (!c) return;
      // (looked at again by content it would match itself, registered under its own inode)
      this.candidates.release(c.dev, c.ino);
      for (const r of c.pendingReads.splice(0)) this.weightsOpened(r.ev, r.key, copy, r.path);
      for (const b of c.pendingBytes.splice(0)) this.loads.bytes(b.ev, b.key, copy);
    } catch {
      // gone, or replaced, before it could be read: nothing left to register
    } finally {
      this.registering--;
    }
  }

  private onLink(ev: LinkEvent): void {
    const path = ev.path;
    if (!path) return;
    this.claimedPaths.add(path);
    if (ev.kind !== 'sym') this.writes.wrote(path);
    // the syscall is on its way in; look once it has had time to finish
    this.linkChecks++;
    setTimeout(() => {
      this.linkChecks--;
      // (through the linker's root, or its parent's, in a mount namespace of its own)
      let st: ReturnType<typeof statOf> = null;
      for (const p of reachable(ev.pid, path, (pid) => this.o.parentOf?.(pid) ?? 0)) if ((st = statOf(p))) break;
      if (!st) return;
      const copy = linkedCopy(ev, path, st, this.o.registry, this.candidates);
      if (copy) this.emitEvent(copy);
    }, 10).unref();
  }

  private sourcesOf(key: ProcessKey): string[] {
    return [...(this.readers.get(key) ?? [])].map((w) => w.path);
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.pollMs);
  }

  private tick(): void {
    const now = Date.now();
    this.candidates.tick(now);
    if (now - this.lastLoadCheck >= LOAD_CHECK_MS) {
      this.lastLoadCheck = now;
      this.loads.tick(now);
      this.forgetExited(now);
    }
    if (this.candidates.size === 0 && this.loads.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
