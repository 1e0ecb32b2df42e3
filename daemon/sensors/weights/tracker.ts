// The weights sensor: turns raw open/link events of subject processes into weights
// events. Files opened for writing are fingerprinted as they grow (off the main thread)
// until they stop growing; registered weights opened for reading are watched through
// /proc/PID/maps and fdinfo to tell a loader (mmap, read whole) from a glance.
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { FileCloseEvent, LinkEvent, OpenEvent, SensorEvent } from '../../events.js';
import type { Sensor, SensorHealth } from '../sensor.js';
import { fingerprint } from './fingerprint.js';
import { type CandidateMatch, matchCandidate } from './match.js';
import { resolveName, resolveOpened } from './paths.js';
import type { WeightFile, WeightRegistry } from './registry.js';

export interface TrackerOptions {
  registry: WeightRegistry;
  /** how often a growing candidate is looked at */
  pollMs?: number;
  /** a candidate that has not grown for this long is done */
  idleMs?: number;
  /** how long a reader of the weights is watched for mmap / reading them whole */
  loadWatchMs?: number;
  maxCandidates?: number;
  /** the daemon's own files (log, config, rules): a subject writing one is tampering */
  monitorPaths?: readonly string[];
}

// writing these moves a process between cgroups or changes the group's state
const CGROUP_CONTROL = /\/cgroup\.(procs|threads|freeze|kill|subtree_control)$|\/freezer\.state$|\/tasks$/;

const MIB = 1 << 20;
// a reader that got this far through a weight file and is still alive a while later loads it
const READ_WHOLE_SHARE = 0.9;
const READ_WHOLE_ALIVE_MS = 2000;
// maps and fdinfo are read less often than candidates are sized
const LOAD_CHECK_MS = 250;

interface Candidate {
  /** the name it was opened under (what the alert reports) */
  path: string;
  /** redline's own fd on the file, opened through the writer's: it follows renames and outlives the writer's close */
  own: number;
  dev: number;
  ino: number;
  pid: number;
  comm: string;
  size: number;
  lastGrowth: number;
  match: CandidateMatch | null;
  busy: boolean;
  /** a match was attempted at least once (false: a first look is still due) */
  checked: boolean;
  /** reads of this file seen before it was known to be the weights (a copy read right after it is made) */
  pendingReads: { ev: OpenEvent; path: string }[];
}

interface LoadWatch {
  pid: number;
  fd: number;
  weight: WeightFile;
  path: string;
  comm: string;
  until: number;
  readWholeAt: number | null;
}

function statOf(path: string): { dev: number; ino: number; size: number; file: boolean } | null {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino, size: st.size, file: st.isFile() };
  } catch {
    return null;
  }
}

export class WeightsTracker extends EventEmitter implements Sensor {
  readonly name = 'weights';
  private readonly candidates = new Map<string, Candidate>();
  private readonly loads = new Map<string, LoadWatch>();
  /** weight files each pid opened for reading: the likely source of what it writes */
  private readonly readers = new Map<number, Set<WeightFile>>();
  /** link checks scheduled and not yet run */
  private linkChecks = 0;
  /** pids that wrote a copy: copiers read the weights whole too, but are not servers */
  private readonly writers = new Set<number>();
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
  private readonly monitorPaths: Set<string>;

  constructor(private readonly o: TrackerOptions) {
    super();
    this.pollMs = o.pollMs ?? 20;
    this.idleMs = o.idleMs ?? 2000;
    this.loadWatchMs = o.loadWatchMs ?? 60_000;
    this.maxCandidates = o.maxCandidates ?? 512;
    this.monitorPaths = new Set(o.monitorPaths ?? []);
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

  /** called with every raw open/link event, before the pipeline sees it (it fills in `path`) */
  observe(ev: OpenEvent | LinkEvent): void {
    if (ev.type === 'open') this.onOpen(ev);
    else this.onLink(ev);
  }

  private emitEvent(ev: SensorEvent): void {
    this.events++;
    this.emit('event', ev);
  }

  private onOpen(ev: OpenEvent): void {
    // The name as given is what the syscall opened. The fd is only the fallback for a name
    // that is already gone (renamed, deleted): in a fast loop (split, tar) the same fd number
    // names the next file by the time this runs. A negative fd is a refused attempt to write.
    const named = resolveName(ev.pid, ev.dfd, ev.filename);
    const byName = named ? statOf(named) : null;
    const byFd = !byName && ev.fd >= 0 ? statOf(`/proc/${ev.pid}/fd/${ev.fd}`) : null;
    const path = byName ? named : byFd ? resolveOpened(ev.pid, ev.fd, ev.dfd, ev.filename) : named;
    const st = byName ?? byFd;
    if (path) ev.path = path;
    if (ev.write && path && (CGROUP_CONTROL.test(path) || this.monitorPaths.has(path))) ev.monitor_file = true;
    if (ev.fd < 0 || !st || !st.file) return;
    const w = this.o.registry.byInode(st.dev, st.ino);
    if (w) return this.weightsOpened(ev, w, path ?? w.path);
    const pending = this.candidates.get(`${st.dev}:${st.ino}`);
    if (pending && !pending.match && !ev.write && path && pending.pendingReads.length < 32) pending.pendingReads.push({ ev, path });
    if (ev.write && path) this.addCandidate(ev, path, st);
  }

  private weightsOpened(ev: OpenEvent, w: WeightFile, path: string): void {
    this.emitEvent({ type: 'weights_open', time: ev.time, pid: ev.pid, comm: ev.comm, path, weight: w.path, generation: w.generation, write: ev.write });
    if (ev.write) return;
    let set = this.readers.get(ev.pid);
    if (!set) this.readers.set(ev.pid, (set = new Set()));
    set.add(w);
    this.watchLoad(ev, w, path);
  }

  private onLink(ev: LinkEvent): void {
    const path = resolveName(ev.pid, ev.dfd, ev.filename);
    if (!path) return;
    ev.path = path;
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

  private addCandidate(ev: OpenEvent, path: string, st: { dev: number; ino: number; size: number }): void {
    const key = `${st.dev}:${st.ino}`;
    if (this.candidates.has(key)) return;
    this.claimedInodes.add(key);
    if (this.candidates.size >= this.maxCandidates) {
      const oldest = this.candidates.keys().next().value;
      if (oldest !== undefined) this.dropCandidate(oldest);
    }
    const own = openSame(path, st) ?? openSame(`/proc/${ev.pid}/fd/${ev.fd}`, st);
    if (own === null) return;
    this.candidates.set(key, { path, own, dev: st.dev, ino: st.ino, pid: ev.pid, comm: ev.comm ?? '', size: -1, lastGrowth: Date.now(), match: null, busy: false, checked: false, pendingReads: [] });
    this.arm();
  }

  private watchLoad(ev: OpenEvent, weight: WeightFile, path: string): void {
    const key = `${ev.pid}:${weight.fp.dev}:${weight.fp.ino}`;
    if (this.loads.has(key)) return;
    this.loads.set(key, { pid: ev.pid, fd: ev.fd, weight, path, comm: ev.comm ?? '', until: Date.now() + this.loadWatchMs, readWholeAt: null });
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
    void matchCandidate(ownPath(c), this.o.registry, { preferSources: this.sourcesOf(c.pid), ignoreOwnInode: c.match !== null })
      .then((m) => {
        if (!m) return;
        if (c.match && m.kind === c.match.kind) return;
        c.match = m;
        this.writers.add(c.pid);
        // known by its inode from now on, so a rename or a later read of it is still the weights;
        // the fingerprint is completed when the copy stops growing (an archive is not itself weights)
        if (m.kind !== 'archive' && !this.o.registry.byInode(c.dev, c.ino)) {
          const copy = this.o.registry.addCopy(c.path, { ...m.source.fp, dev: c.dev, ino: c.ino, size: m.bytes }, m.source, m.kind);
          for (const r of c.pendingReads.splice(0)) this.weightsOpened(r.ev, copy, r.path);
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

  private sourcesOf(pid: number): string[] {
    return [...(this.readers.get(pid) ?? [])].map((w) => w.path);
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
  observeClose(ev: FileCloseEvent): void {
    const w = this.o.registry.byInode(ev.dev, ev.ino);
    if (!w || ev.pos < READ_WHOLE_SHARE * w.fp.size || this.writers.has(ev.pid)) return;
    const key = `${ev.pid}:${w.fp.dev}:${w.fp.ino}`;
    const now = Date.now();
    const l = this.loads.get(key) ?? { pid: ev.pid, fd: ev.fd, weight: w, path: w.path, comm: ev.comm ?? '', until: now, readWholeAt: null };
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
    if (l.readWholeAt === null && !this.writers.has(l.pid)) {
      const pos = fdPos(l.pid, l.fd);
      if (pos !== null && pos >= READ_WHOLE_SHARE * l.weight.fp.size) l.readWholeAt = now;
    }
    if (l.readWholeAt !== null && now - l.readWholeAt >= READ_WHOLE_ALIVE_MS && !this.writers.has(l.pid)) return this.loaded(key, l, 'read');
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
