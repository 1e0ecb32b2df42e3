// The folder watcher: chokidar on --watch folders and the folders that hold the weights,
// for copies eBPF cannot attribute (made by a process outside the subject on its behalf,
// io_uring writes). Its finds carry seen_by "watch" and no writer (pid 0). Files the eBPF
// path already follows are left to it.
import { EventEmitter } from 'node:events';
import { type Dirent, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Sensor, SensorHealth } from '../sensor.js';
import { matchCandidate } from './match.js';
import type { WeightRegistry } from './registry.js';

export interface WatchOptions {
  registry: WeightRegistry;
  folders: readonly string[];
  /** true when the eBPF path already follows (or has matched) this inode */
  claimed: (dev: number, ino: number, path: string) => boolean;
  /** bounded: chokidar holds one inotify watch per file and folder */
  depth?: number;
  /** give the eBPF path this long to claim a new file first */
  settleMs?: number;
}

const MIB = 1 << 20;
/** how deep below a folder added while running its files are watched (0: the folder's own files) */
const ADDED_DEPTH = 1;
/** a folder added is swept again after this long */
const RESWEEP_MS = 500;
/** a folder added late is swept for files written before the watch began, up to this many entries */
const SWEEP_MAX_ENTRIES = 10_000;

export class FolderWatcher extends EventEmitter implements Sensor {
  readonly name = 'watch';
  private watcher: FSWatcher | null = null;
  private readonly reported = new Set<string>();
  private readonly pending = new Set<string>();
  private events = 0;

  constructor(private readonly o: WatchOptions) {
    super();
  }

  /** the folders watched now: those given, and those added since */
  private readonly folders = new Set<string>();

  async start(): Promise<void> {
    if (this.o.folders.length === 0) return;
    for (const f of this.o.folders) this.folders.add(f);
    const w = watch([...this.o.folders], { ignoreInitial: true, depth: this.o.depth ?? 3, awaitWriteFinish: false, followSymlinks: false });
    this.watcher = w;
    w.on('add', (path, st) => this.consider(path, st?.dev, st?.ino, st?.size));
    w.on('change', (path, st) => this.consider(path, st?.dev, st?.ino, st?.size));
    w.on('error', (err) => this.emit('trouble', { sensor: this.name, reason: 'stderr', detail: `folder watch: ${(err as Error).message}` }));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  /**
   * A folder more (the poll sensor found the subject working there); false if it was watched
   * already. What was written there since `since` (ms) before the watch began is looked at too:
   * the subject may have copied the weights in before the pass that found it there.
   */
  add(folder: string, since: number): boolean {
    // below a given folder (watched three deep) it is watched already; an added one is watched
    // one deep only, so a folder below it is a folder more
    if (this.folders.has(folder) || this.o.folders.some((f) => folder.startsWith(`${f}/`))) return false;
    this.folders.add(folder);
    if (!this.added) {
      // shallower than the given folders: a working folder may be a whole project tree
      this.added = watch(folder, { ignoreInitial: true, depth: ADDED_DEPTH, awaitWriteFinish: false, followSymlinks: false });
      // what was written while chokidar scanned counts as there before it: looked at once it is ready
      this.added.once('ready', () => {
        this.addedScanned = true;
        this.sweepAdded();
      });
      this.added.on('add', (path, st) => this.consider(path, st?.dev, st?.ino, st?.size));
      this.added.on('change', (path, st) => this.consider(path, st?.dev, st?.ino, st?.size));
      this.added.on('error', (err) => this.emit('trouble', { sensor: this.name, reason: 'stderr', detail: `folder watch: ${(err as Error).message}` }));
    } else this.added.add(folder);
    this.addedSince.set(folder, since);
    this.sweep(folder, since);
    // (and again once chokidar has surely set its watch: a file made between the two is not lost)
    setTimeout(() => this.sweep(folder, since), RESWEEP_MS).unref();
    return true;
  }

  /** the folders added while running, with the time from which what is written there counts */
  private readonly addedSince = new Map<string, number>();

  /** the watcher of the folders added while running */
  private added: FSWatcher | null = null;

  /** files of at least 1 MiB changed since `since`, up to the watch's depth, each considered once */
  private sweep(folder: string, since: number): void {
    let budget = SWEEP_MAX_ENTRIES;
    const walk = (dir: string, depth: number): void => {
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (--budget < 0) return;
        const path = join(dir, e.name);
        if (e.isDirectory() && depth < ADDED_DEPTH) walk(path, depth + 1);
        else if (e.isFile()) {
          try {
            const st = statSync(path);
            if (st.size >= MIB && st.mtimeMs >= since) this.consider(path, st.dev, st.ino, st.size);
          } catch {
            // gone meanwhile
          }
        }
      }
    };
    walk(folder, 0);
  }

  async stop(): Promise<void> {
    await this.added?.close();
    this.added = null;
    await this.watcher?.close();
    this.watcher = null;
  }

  ownPids(): number[] {
    return [];
  }

  health(): SensorHealth {
    return { name: this.name, running: this.watcher !== null, restarts: 0, lost: 0, events: this.events, detail: `${this.folders.size} folders` };
  }

  private consider(path: string, dev?: number, ino?: number, size?: number): void {
    if (dev === undefined || ino === undefined || size === undefined) return;
    const key = `${dev}:${ino}`;
    // a file being written fires a change per write: one look per file is enough
    if (this.reported.has(key) || this.pending.has(key) || this.o.claimed(dev, ino, path)) return;
    const known = this.o.registry.byInode(dev, ino);
    // the registered files themselves, as they were at start, are not news
    if (known && known.path === path) return;
    if (!known && size < MIB) return;
    this.pending.add(key);
    setTimeout(() => {
      this.pending.delete(key);
      if (this.o.claimed(dev, ino, path) || this.reported.has(key)) return;
      void this.check(path, dev, ino, known !== undefined);
    }, this.o.settleMs ?? 500).unref();
  }

  /** looks still under way: files waiting for their look, matches running, added folders chokidar is still scanning */
  busy(): boolean {
    return this.pending.size > 0 || this.checking > 0 || (this.added !== null && !this.addedScanned);
  }

  /** the folders added while running, swept once more (a trial's end: what was written last) */
  sweepAdded(): void {
    for (const [f, at] of this.addedSince) this.sweep(f, at);
  }

  private checking = 0;
  private addedScanned = false;

  private async check(path: string, dev: number, ino: number, hardlink: boolean): Promise<void> {
    this.checking++;
    try {
      await this.look(path, dev, ino, hardlink);
    } finally {
      this.checking--;
    }
  }

  private async look(path: string, dev: number, ino: number, hardlink: boolean): Promise<void> {
    const key = `${dev}:${ino}`;
    const m = hardlink ? null : await matchCandidate(path, this.o.registry, {});
    const source = hardlink ? this.o.registry.byInode(dev, ino) : m?.source;
    if (!source || this.reported.has(key)) return;
    this.reported.add(key);
    this.events++;
    this.emit('event', {
      type: 'weights_copy', time: Date.now(), pid: 0, comm: '', path, weight: source.path, generation: source.generation + 1,
      match: hardlink ? 'hardlink' : (m?.kind ?? 'partial'), bytes: m?.bytes ?? source.fp.size, offset: m?.offset ?? 0, seen_by: 'watch',
    });
  }
}
