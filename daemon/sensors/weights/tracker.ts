// The weights sensor: turns open/link events of subject processes (their paths already
// named by the ingress) into weights events. Files opened for writing are fingerprinted as
// they grow (off the main thread) until they stop growing; registered weights opened for
// reading are watched through /proc/PID/maps and fdinfo to tell a loader (mmap, read whole)
// from a glance. What it keeps per process is keyed by the process's identity (pid + start
// time), so a pid the kernel hands to a new process inherits nothing.
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import type { FileCloseEvent, LinkEvent, OpenEvent, SensorEvent } from '../../events.js';
import { type FileStat, statOf } from '../../ingress.js';
import type { Sensor, SensorHealth } from '../sensor.js';
import { fingerprint } from './fingerprint.js';
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
  /** how long a reader of the weights is watched for mmap / reading them whole */
  loadWatchMs?: number;
  maxCandidates?: number;
}

const MIB = 1 << 20;
// a reader that got this far through a weight file and is still alive a while later loads it
const READ_WHOLE_SHARE = 0.9;
const READ_WHOLE_ALIVE_MS = 2000;
// maps and fdinfo are read less often than candidates are sized
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
}

interface LoadWatch {
  pid: number;
  key: ProcessKey;
  fd: number;
  weight: WeightFile;
  path: string;
  comm: string;
  until: number;
  readWholeAt: number | null;
}

export class WeightsTracker extends EventEmitter implements Sensor {
  readonly name = 'weights';
  private readonly candidates = new Map<string, Candidate>();
  private readonly loads = new Map<string, LoadWatch>();
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
  private readonly loadWatchMs: number;
  private readonly maxCandidates: number;

  constructor(private readonly o: TrackerOptions) {
    super();
    this.pollMs = o.pollMs ?? 20;
    this.idleMs = o.idleMs ?? 2000;
    this.loadWatchMs = o.loadWatchMs ?? 60_000;
    this.maxCandidates = o.maxCandidates ?? 512;
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
   * The process exited: what was kept about it goes after a grace period (a close or a copy
   * match may still be reported about it), so the state never outgrows the live processes.
   */
  exited(key: ProcessKey): void {
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
    if (ev.write && path) this.addCandidate(ev, key, path, st);
  }

  private weightsOpened(ev: OpenEvent, key: ProcessKey, w: WeightFile, path: string): void {
    this.emitEvent({ type: 'weights_open', time: ev.time, pid: ev.pid, comm: ev.comm, path, weight: w.path, generation: w.generation, write: ev.write });
    if (ev.write) return;
    let set = this.readers.get(key);
    if (!set) this.readers.set(key, (set = new Set()));
    set.add(w);
    this.watchLoad(ev, key, w, path);
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
      const w = st ? this.o.registry.byInode(st.dev, st.ino) : undefined;
      if (!w) return;
      this.emitEvent({
        type: 'weights_copy', time: ev.time, pid: ev.pid, comm: ev.comm, path, weight: w.path, generation: w.generation + 1,
        match: ev.kind === 'sym' ? 'symlink' : 'hardlink', bytes: st?.size ?? 0, offset: 0, seen_by: 'ebpf',
      });
    }, 10).unref();
  }

  private addCandidate(ev: OpenEvent, writer: ProcessKey, path: string, st: FileStat): void {
    const key = `${st.dev}:${st.ino}`;
    if (this.candidates.has(key)) return;
    this.claimedInodes.add(key);
    if (this.candidates.size >= this.maxCandidates) {
      const oldest = this.candidates.keys().next().value;
      if (oldest !== undefined) this.dropCandidate(oldest);
    }
    const own = openSame(path, st) ?? openSame(`/proc/${ev.pid}/fd/${ev.fd}`, st);
    if (own === null) return;
    this.candidates.set(key, { path, own, dev: st.dev, ino: st.ino, pid: ev.pid, key: writer, comm: ev.comm ?? '', size: -1, lastGrowth: Date.now(), match: null, busy: false, checked: false, pendingReads: [] });
    this.arm();
  }

  private watchLoad(ev: OpenEvent, proc: ProcessKey, weight: WeightFile, path: string): void {
    const key = `${proc}:${weight.fp.dev}:${weight.fp.ino}`;
    if (this.loads.has(key)) return;
    this.loads.set(key, { pid: ev.pid, key: proc, fd: ev.fd, weight, path, comm: ev.comm ?? '', until: Date.now() + this.loadWatchMs, readWholeAt: null });
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
      for (const [key, l] of this.loads) this.checkLoad(key, l, now);
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

  /**
   * A file closed after reading most of it: when it is registered weights, the process read
   * them whole (a loader that reads and closes, as transformers does, leaves no fd or
   * mapping to look at). Still alive READ_WHOLE_ALIVE_MS later, it is a replica.
   */
  observeClose(ev: FileCloseEvent, proc: ProcessKey): void {
    const w = this.o.registry.byInode(ev.dev, ev.ino);
    if (!w || ev.pos < READ_WHOLE_SHARE * w.fp.size || this.writers.has(proc)) return;
    const key = `${proc}:${w.fp.dev}:${w.fp.ino}`;
    const now = Date.now();
    const l = this.loads.get(key) ?? { pid: ev.pid, key: proc, fd: ev.fd, weight: w, path: w.path, comm: ev.comm ?? '', until: now, readWholeAt: null };
    l.readWholeAt ??= now;
    l.until = Math.max(l.until, now + READ_WHOLE_ALIVE_MS + 1000);
    this.loads.set(key, l);
    this.arm();
  }

  /** looks at once whether `pid` holds weights it opened (before its listen() is judged) */
  checkNow(pid: number): void {
    const now = Date.now();
    for (const [key, l] of this.loads) if (l.pid === pid) this.checkLoad(key, l, now);
  }

  private checkLoad(key: string, l: LoadWatch, now: number): void {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${l.pid}/maps`, 'utf8');
    } catch {
      this.loads.delete(key);
      return;
    }
    const ino = ` ${l.weight.fp.ino} `;
    if (maps.includes(ino) && mapsHoldInode(maps, l.weight.fp.ino)) return this.loaded(key, l, 'mmap');
    if (l.readWholeAt === null && !this.writers.has(l.key)) {
      const pos = fdPos(l.pid, l.fd);
      if (pos !== null && pos >= READ_WHOLE_SHARE * l.weight.fp.size) l.readWholeAt = now;
    }
    if (l.readWholeAt !== null && now - l.readWholeAt >= READ_WHOLE_ALIVE_MS && !this.writers.has(l.key)) return this.loaded(key, l, 'read');
    if (now > l.until) this.loads.delete(key);
  }

  private loaded(key: string, l: LoadWatch, how: 'mmap' | 'read'): void {
    this.loads.delete(key);
    this.emitEvent({ type: 'weights_load', time: Date.now(), pid: l.pid, comm: l.comm, path: l.path, weight: l.weight.path, generation: l.weight.generation, how });
  }
}

/** /proc/PID/maps lines: address perms offset dev inode path */
function mapsHoldInode(maps: string, ino: number): boolean {
  for (const line of maps.split('\n')) {
    const f = line.split(/\s+/);
    if (f[4] === String(ino)) return true;
  }
  return false;
}

function fdPos(pid: number, fd: number): number | null {
  try {
    const m = /^pos:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
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
