// The weights sensor: turns open/link events of subject processes (their paths already
// named by the ingress) and the kernel's byte counts of every process (file_bytes) into
// weights events. Files written — opened for writing by the subject, or written by anyone
// who read the weights, named or not (O_TMPFILE), through write() or a shared map — are
// fingerprinted as they grow (off the main thread) until they stop growing. Loads are the
// bytes of a model mapped or read (loads.ts). What it keeps per process is keyed by the
// process's identity (pid + start time), so a pid the kernel hands to a new process inherits
// nothing.
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, openSync, readlinkSync } from 'node:fs';
import type { FileBytesEvent, LinkEvent, OpenEvent, SensorEvent } from '../../events.js';
import { type FileStat, statOf } from '../../ingress.js';
import type { Sensor, SensorHealth } from '../sensor.js';
import { fingerprint } from './fingerprint.js';
import { type Load, LoadAccounting } from './loads.js';
import { type CandidateMatch, matchCandidate } from './match.js';
import type { WeightFile, WeightRegistry } from './registry.js';

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
}

const MIB = 1 << 20;
// readers past the share are looked at less often than candidates are sized
const LOAD_CHECK_MS = 250;
// what is known of an exited process is kept this long for events reported after its exit
const EXITED_GRACE_MS = 10_000;

interface Candidate {
  /** the name it was opened under (what the alert reports) */
  path: string;
  /** redline's own fd on the file, opened through the writer's: it follows renames and outlives the writer's close */
  own: number;
  dev: number;
  ino: number;
  pid: number;
  /** the writer's identity */
  key: ProcessKey;
  comm: string;
  size: number;
  lastGrowth: number;
  match: CandidateMatch | null;
  busy: boolean;
  /** a match was attempted at least once (false: a first look is still due) */
  checked: boolean;
  /** reads of this file seen before it was known to be the weights (a copy read right after it is made) */
  pendingReads: { ev: OpenEvent; key: ProcessKey; path: string }[];
  /** bytes read or mapped from it before it was known to be the weights (a copy served at once) */
  pendingBytes: { ev: FileBytesEvent; key: ProcessKey }[];
}

export class WeightsTracker extends EventEmitter implements Sensor {
  readonly name = 'weights';
  private readonly candidates = new Map<string, Candidate>();
  private readonly loads: LoadAccounting;
  /** weight files each process opened for reading: the likely source of what it writes */
  private readonly readers = new Map<ProcessKey, Set<WeightFile>>();
  /** link checks scheduled and not yet run */
  private linkChecks = 0;
  /** processes that wrote a copy: copiers read the weights whole too, but are not servers */
  private readonly writers = new Set<ProcessKey>();
  /** processes that exited, with when: their state goes once late events had time to land */
  private exitedAt = new Map<ProcessKey, number>();
  /** inodes written by subject processes and paths of links they made: the watcher leaves these alone */
  private readonly claimedInodes = new Set<string>();
  private readonly claimedPaths = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private lastLoadCheck = 0;
  private events = 0;
  private readonly pollMs: number;
  private readonly idleMs: number;
  private readonly maxCandidates: number;

  constructor(private readonly o: TrackerOptions) {
    super();
    this.pollMs = o.pollMs ?? 20;
    this.idleMs = o.idleMs ?? 2000;
    this.maxCandidates = o.maxCandidates ?? 512;
    this.loads = new LoadAccounting(o.registry, o.loadShare ?? 0.5, (l) => this.loaded(l));
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const key of [...this.candidates.keys()]) this.dropCandidate(key);
  }

  ownPids(): number[] {
    return [];
  }

  health(): SensorHealth {
    return { name: this.name, running: true, restarts: 0, lost: 0, events: this.events, detail: `${this.candidates.size} candidates, ${this.loads.size} readers watched` };
  }

  claimed(dev: number, ino: number, path: string): boolean {
    return this.claimedInodes.has(`${dev}:${ino}`) || this.claimedPaths.has(path);
  }

  /** every open/link of a subject process, named by the ingress; `file` is what stat() said of an open */
  observe(ev: OpenEvent | LinkEvent, file: FileStat | null, key: ProcessKey): void {
    if (ev.type === 'open') this.onOpen(ev, file, key);
    else this.onLink(ev);
  }

  /**
   * The process exited (at `time`, the kernel's): a reader past the share is judged by how
   * long it lived; what was kept about it goes after a grace period (a copy match may still
   * be reported about it), so the state never outgrows the live processes.
   */
  exited(key: ProcessKey, time = Date.now()): void {
    this.loads.exited(key, time);
    this.exitedAt.set(key, Date.now());
    if (this.exitedAt.size >= 4096) this.forgetExited(Date.now());
  }

  private forgetExited(now: number): void {
    for (const [key, at] of this.exitedAt) {
      if (now - at < EXITED_GRACE_MS) break; // in order of exit
      this.exitedAt.delete(key);
      this.readers.delete(key);
      this.writers.delete(key);
    }
  }

  private emitEvent(ev: SensorEvent): void {
    this.events++;
    this.emit('event', ev);
  }

  private onOpen(ev: OpenEvent, st: FileStat | null, key: ProcessKey): void {
    const path = ev.path;
    if (ev.fd < 0 || !st || !st.file) return;
    const w = this.o.registry.byInode(st.dev, st.ino);
    if (w) return this.weightsOpened(ev, key, w, path ?? w.path);
    const pending = this.candidates.get(`${st.dev}:${st.ino}`);
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

  /**
   * Bytes a process (any on the host) moved through a large file. Bytes of the weights count
   * towards a load; a write by a subject process, or by one that read the weights, makes the
   * file a candidate copy (through the writer's fd: it may have no name yet).
   */
  observeBytes(ev: FileBytesEvent, key: ProcessKey): void {
    if (ev.write) this.loads.wrote(key, ev.bytes);
    const w = this.o.registry.byInode(ev.dev, ev.ino);
    if (w) {
      if (ev.write) return;
      this.arm();
      return this.loads.bytes(ev, key, w);
    }
    const c = this.candidates.get(`${ev.dev}:${ev.ino}`);
    if (c) {
      if (!ev.write && !c.match && c.pendingBytes.length < 64) c.pendingBytes.push({ ev, key });
      return;
    }
    if (!ev.write || ev.fd < 0 || (!ev.subject && !this.loads.has(key))) return;
    const via = `/proc/${ev.pid}/fd/${ev.fd}`;
    let path: string;
    try {
      path = readlinkSync(via);
    } catch {
      return;
    }
    if (!path.startsWith('/')) return;
    this.addCandidate(ev.pid, ev.fd, ev.comm ?? '', key, path, { dev: ev.dev, ino: ev.ino });
  }

  /** is this line about the weights (bytes of them, of a copy being made, or written by a process that read them)? */
  concerns(ev: FileBytesEvent): boolean {
    const k = `${ev.dev}:${ev.ino}`;
    return this.o.registry.byInode(ev.dev, ev.ino) !== undefined || this.candidates.has(k) || (ev.write && this.loads.hasPid(ev.pid));
  }

  private loaded(l: Load): void {
    this.emitEvent({
      type: 'weights_load', time: l.time, pid: l.pid, comm: l.comm, path: l.weight.path, weight: l.weight.path, generation: l.weight.generation,
      how: l.how, bytes: l.bytes, share: Math.round(l.share * 1000) / 1000, outside_subject: l.outside || undefined,
    });
  }

  private onLink(ev: LinkEvent): void {
    const path = ev.path;
    if (!path) return;
    this.claimedPaths.add(path);
    // the syscall is on its way in; look once it has had time to finish
    this.linkChecks++;
    setTimeout(() => {
      this.linkChecks--;
      const st = statOf(path);
      if (!st) return;
      // a file written with no name (O_TMPFILE) and named by linkat: the same copy, named now
      const c = this.candidates.get(`${st.dev}:${st.ino}`);
      if (c?.path.endsWith(' (deleted)')) c.path = path;
      const w = this.o.registry.byInode(st.dev, st.ino);
      if (!w) return;
      if (w.path.endsWith(' (deleted)')) {
        this.o.registry.updatePath(st.dev, st.ino, path);
        this.emitEvent({
          type: 'weights_copy', time: ev.time, pid: ev.pid, comm: ev.comm, path, weight: w.source ?? w.path, generation: w.generation,
          match: w.match ?? 'full', bytes: st.size, offset: 0, seen_by: 'ebpf',
        });
        return;
      }
      this.emitEvent({
        type: 'weights_copy', time: ev.time, pid: ev.pid, comm: ev.comm, path, weight: w.path, generation: w.generation + 1,
        match: ev.kind === 'sym' ? 'symlink' : 'hardlink', bytes: st?.size ?? 0, offset: 0, seen_by: 'ebpf',
      });
    }, 10).unref();
  }

  private addCandidate(pid: number, fd: number, comm: string, writer: ProcessKey, path: string, st: { dev: number; ino: number }): void {
    const key = `${st.dev}:${st.ino}`;
    if (this.candidates.has(key)) return;
    this.claimedInodes.add(key);
    if (this.candidates.size >= this.maxCandidates) {
      const oldest = this.candidates.keys().next().value;
      if (oldest !== undefined) this.dropCandidate(oldest);
    }
    // through the writer's fd first when the name is gone (O_TMPFILE, unlinked): it is the file
    const own = path.endsWith(' (deleted)') ? openSame(`/proc/${pid}/fd/${fd}`, st) : (openSame(path, st) ?? openSame(`/proc/${pid}/fd/${fd}`, st));
    if (own === null) return;
    this.candidates.set(key, { path, own, dev: st.dev, ino: st.ino, pid, key: writer, comm, size: -1, lastGrowth: Date.now(), match: null, busy: false, checked: false, pendingReads: [], pendingBytes: [] });
    this.arm();
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.pollMs);
  }

  private tick(): void {
    const now = Date.now();
    for (const [key, c] of this.candidates) this.checkCandidate(key, c, now);
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

  private checkCandidate(key: string, c: Candidate, now: number): void {
    if (c.busy) return;
    let size = c.size;
    try {
      size = fstatSync(c.own).size;
    } catch {
      // our own fd cannot go stale; keep the last size if it somehow does
    }
    if (size !== c.size) {
      c.size = size;
      c.lastGrowth = now;
    }
    const idle = now - c.lastGrowth;
    if (idle > this.idleMs) {
      if (c.match) void this.registerCopy(c).finally(() => this.dropCandidate(key));
      else this.dropCandidate(key);
      return;
    }
    const wantsFirst = c.match === null && c.size >= MIB;
    // a partial match is looked at again once the writer pauses: it may be complete now
    const wantsUpgrade = c.match?.kind === 'partial' && idle >= 200 && c.size >= c.match.source.fp.size;
    if (!wantsFirst && !wantsUpgrade) return;
    c.busy = true;
    void matchCandidate(ownPath(c), this.o.registry, { preferSources: this.sourcesOf(c.key), ignoreOwnInode: c.match !== null })
      .then((m) => {
        if (!m) return;
        if (c.match && m.kind === c.match.kind) return;
        c.match = m;
        this.writers.add(c.key);
        // known by its inode from now on, so a rename or a later read of it is still the weights;
        // the fingerprint is completed when the copy stops growing (an archive is not itself weights)
        if (m.kind !== 'archive' && !this.o.registry.byInode(c.dev, c.ino)) {
          const copy = this.o.registry.addCopy(c.path, { ...m.source.fp, dev: c.dev, ino: c.ino, size: m.bytes }, m.source, m.kind);
          for (const r of c.pendingReads.splice(0)) this.weightsOpened(r.ev, r.key, copy, r.path);
          for (const b of c.pendingBytes.splice(0)) this.loads.bytes(b.ev, b.key, copy);
        }
        this.emitEvent({
          type: 'weights_copy', time: Date.now(), pid: c.pid, comm: c.comm, path: c.path, weight: m.source.path, generation: m.source.generation + 1,
          match: m.kind, bytes: m.bytes, offset: m.offset, seen_by: 'ebpf',
        });
      })
      .catch(() => undefined)
      .finally(() => {
        c.busy = false;
        c.checked = true;
      });
  }

  private dropCandidate(key: string): void {
    const c = this.candidates.get(key);
    if (!c) return;
    this.candidates.delete(key);
    if (c.busy) return void setTimeout(() => closeQuietly(c.own), 1000).unref();
    closeQuietly(c.own);
  }

  private sourcesOf(key: ProcessKey): string[] {
    return [...(this.readers.get(key) ?? [])].map((w) => w.path);
  }

  /** a finished copy becomes a weight file itself, with its lineage */
  private async registerCopy(c: Candidate): Promise<void> {
    if (!c.match || c.match.kind === 'archive') return;
    try {
      const fp = await fingerprint(ownPath(c));
      // registered under the name it has now (a copy may have been renamed since)
      let now = c.path;
      try {
        now = readlinkSync(ownPath(c));
      } catch {
        // keep the name it was written under
      }
      this.o.registry.addCopy(now.endsWith(' (deleted)') ? c.path : now, fp, c.match.source, c.match.kind);
    } catch {
      // removed or renamed before it could be read again: nothing more to learn from it
    }
  }

  /**
   * Work still under way that may yet report: a link to look at, a match running, a
   * candidate big enough for a first look that has not had one. (`exec` waits for this
   * before its verdict: a `ln` or `cp` the subject ran last is judged before the trial ends.)
   */
  busy(): boolean {
    if (this.linkChecks > 0) return true;
    for (const c of this.candidates.values()) if (c.busy || (!c.checked && c.size >= MIB)) return true;
    return false;
  }
}

/** a path to the candidate through redline's own fd: valid whatever the writer renames it to */
function ownPath(c: Candidate): string {
  return `/proc/${process.pid}/fd/${c.own}`;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** an fd of ours on `path` if it is still the file with that inode */
function openSame(path: string, st: { dev: number; ino: number }): number | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  const now = fstatSync(fd);
  if (now.dev === st.dev && now.ino === st.ino) return fd;
  closeSync(fd);
  return null;
}
