// A filesystem filled by the subject: a write the kernel refused for want of space (ENOSPC),
// or the subject's writes taking a filesystem's free space under the threshold (a share of
// its size) when it had more before the subject wrote there. The filesystem is looked at
// through a folder the daemon holds open (the writer's, reached through /proc/PID/root): it
// stays reachable after the writer exits, and from inside a mount namespace of the subject's.
import { EventEmitter } from 'node:events';
import { closeSync, constants, openSync, readFileSync, readlinkSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DiskFillEvent, EnospcEvent, FileBytesEvent } from '../events.js';
import type { Sensor, SensorHealth, SensorTrouble } from '../sensors/sensor.js';

export interface DiskWatchOptions {
  /** free space under this share of the size (0–1) is a filled filesystem */
  minFree: number;
  /** a process's parent as the table knows it (the writer may be gone: its parent's mounts are looked at) */
  parentOf?: (pid: number) => number;
  /** how often a filesystem written to lately is looked at again */
  intervalMs?: number;
  /** a filesystem nobody wrote to for this long is let go */
  idleMs?: number;
}

interface Watched {
  dev: number;
  /** the daemon's fd on a folder of that filesystem (or -1: looked at through the writer's fd) */
  dirFd: number;
  via: string;
  path: string;
  pid: number;
  comm: string;
  bytes: number;
  freeBefore: number;
  lastWrite: number;
  /** reported already (once per filesystem while it is watched) */
  filled: boolean;
}

const INTERVAL_MS = 500;
const IDLE_MS = 30_000;

function space(path: string): { free: number; total: number } | null {
  try {
    const s = statfsSync(path);
    return { free: Number(s.bavail) * Number(s.bsize), total: Number(s.blocks) * Number(s.bsize) };
  } catch {
    return null;
  }
}

/** where the filesystem `dev` (st_dev) is mounted in `pid`'s mount namespace (its first mount), or null */
export function mountPointOf(pid: number, dev: number): string | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return null;
  }
  const major = (dev >> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    // the mount point escapes spaces and the like as \040
    if (f[2] === `${major}:${minor}` && f[4]) return f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  }
  return null;
}

export class DiskWatch extends EventEmitter<{ event: [DiskFillEvent]; trouble: [SensorTrouble] }> implements Sensor {
  readonly name = 'disk';
  private readonly watched = new Map<number, Watched>();
  private timer: NodeJS.Timeout | null = null;
  private found = 0;

  constructor(private readonly o: DiskWatchOptions) {
    super();
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const w of this.watched.values()) this.release(w);
    this.watched.clear();
  }

  ownPids(): number[] {
    return [];
  }

  health(): SensorHealth {
    return { name: this.name, running: true, restarts: 0, lost: 0, events: this.found, detail: `${this.watched.size} filesystems watched` };
  }

  /** bytes a subject process wrote to a regular file: its filesystem is watched from now (returned: the fill it made) */
  wrote(ev: FileBytesEvent): DiskFillEvent | null {
    if (!ev.write || ev.socket || ev.pipe || !ev.subject) return null;
    const w = this.watched.get(ev.dev) ?? this.watch(ev.dev, ev.pid, ev.fd, ev.comm ?? '');
    if (!w) return null;
    w.bytes += ev.bytes;
    w.lastWrite = Date.now();
    return this.check(w, ev.time, ev.pid, ev.comm);
  }

  /** the kernel refused a subject's write for want of space (returned: the fill, once per filesystem) */
  refused(ev: EnospcEvent): DiskFillEvent | null {
    const w = this.watched.get(ev.dev) ?? this.watch(ev.dev, ev.pid, ev.fd, ev.comm ?? '');
    if (!w) {
      return this.report({ type: 'disk_fill', time: ev.time, pid: ev.pid, comm: ev.comm, how: 'enospc', path: '', dev: ev.dev, free_bytes: 0, total_bytes: 0, bytes: 0, free_before: 0 });
    }
    w.lastWrite = Date.now();
    if (w.filled) return null;
    w.filled = true;
    const s = space(w.via);
    return this.report({ type: 'disk_fill', time: ev.time, pid: ev.pid, comm: ev.comm, how: 'enospc', path: w.path, dev: ev.dev, free_bytes: s?.free ?? 0, total_bytes: s?.total ?? 0, bytes: w.bytes, free_before: w.freeBefore });
  }

  /**
   * The writer's file's folder, or, when the writer is gone already (a quick `dd` is done
   * before its first line is read), the filesystem's mount point as its parent sees it.
   */
  private watch(dev: number, pid: number, fd: number, comm: string): Watched | null {
    let path = '';
    let dir = '';
    try {
      path = readlinkSync(`/proc/${pid}/fd/${fd}`);
      dir = `/proc/${pid}/root${dirname(path)}`;
    } catch {
      for (let p = this.o.parentOf?.(pid) ?? 0, hops = 0; p > 1 && hops < 4 && !dir; p = this.o.parentOf?.(p) ?? 0, hops++) {
        const mount = mountPointOf(p, dev);
        if (mount !== null) {
          path = mount;
          dir = `/proc/${p}/root${mount}`;
        }
      }
      if (!dir) return null;
    }
    let dirFd = -1;
    try {
      dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch {
      // the writer's fd is the way in while it lives
    }
    const via = dirFd >= 0 ? `/proc/self/fd/${dirFd}` : `/proc/${pid}/fd/${fd}`;
    const s = space(via);
    if (!s) {
      if (dirFd >= 0) closeSync(dirFd);
      return null;
    }
    const w: Watched = { dev, dirFd, via, path, pid, comm, bytes: 0, freeBefore: s.free, lastWrite: Date.now(), filled: false };
    this.watched.set(dev, w);
    this.timer ??= setInterval(() => this.tick(), this.o.intervalMs ?? INTERVAL_MS).unref();
    return w;
  }

  private tick(): void {
    try {
      const now = Date.now();
      for (const w of [...this.watched.values()]) {
        if (now - w.lastWrite > (this.o.idleMs ?? IDLE_MS)) {
          this.release(w);
          this.watched.delete(w.dev);
          continue;
        }
        // found by the poll, not by an event: it goes to the inbox
        const ev = this.check(w, now, w.pid, w.comm);
        if (ev) this.emit('event', ev);
      }
      if (this.watched.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    } catch (err) {
      // off the pipeline's path (a timer): said as the sensor's trouble, never thrown
      this.emit('trouble', { sensor: this.name, reason: 'failed', detail: `the disk watch failed: ${(err as Error).message}` });
    }
  }

  private check(w: Watched, time: number, pid: number, comm: string | undefined): DiskFillEvent | null {
    if (w.filled) return null;
    const s = space(w.via);
    if (!s || s.total === 0) return null;
    const floor = s.total * this.o.minFree;
    // a filesystem that was under the threshold before the subject wrote there is not its doing
    if (s.free >= floor || w.freeBefore < floor) return null;
    w.filled = true;
    return this.report({ type: 'disk_fill', time, pid, comm, how: 'low_space', path: w.path, dev: w.dev, free_bytes: s.free, total_bytes: s.total, bytes: w.bytes, free_before: w.freeBefore });
  }

  private report(ev: DiskFillEvent): DiskFillEvent {
    this.found++;
    return ev;
  }

  private release(w: Watched): void {
    if (w.dirFd >= 0) {
      try {
        closeSync(w.dirFd);
      } catch {
        // already closed
      }
    }
  }
}
