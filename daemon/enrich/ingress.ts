// The first stage of the pipeline: it names the file behind a raw open/link (the kernel gave
// a name relative to a dirfd or the cwd) and tags the monitor's own files. It returns a new
// event; the one it got stays as the sensor made it. Other event types pass it unchanged.
import { realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { groupPids } from '../cgroup.js';
import type { FileChangeEvent, LinkEvent, OpenEvent, SensorEvent } from '../events.js';
import type { ProtectedAreas } from './areas.js';
import { fdPath, type FileStat, type ParentOf, reachable, resolveName, resolveOpened, statOf } from './paths.js';

export interface Ingested<E extends SensorEvent = SensorEvent> {
  event: E;
  /** for opens: the file that was opened, when it could be looked at */
  file: FileStat | null;
}

// writing these moves a process between cgroups or changes the group's state
/** the control files that freeze or kill a whole group */
const GROUP_STOPPER = /\/cgroup\.(freeze|kill)$/;
/** victims named per event (the alert names the first outside the subject, the event all of these) */
const VICTIMS_MAX = 64;

/** a write to a group's cgroup.freeze or cgroup.kill: who is in that group now (a kill's are often gone already: the kernel names those, script.ts doorKillProbes) */
function victimsOf(path: string): number[] | undefined {
  if (!GROUP_STOPPER.test(path)) return undefined;
  return groupPids(dirname(path)).slice(0, VICTIMS_MAX);
}

const CGROUP_CONTROL = /\/cgroup\.(procs|threads|freeze|kill|subtree_control)$|\/freezer\.state$|\/tasks$/;

/** the real path of a file, or of its folder when the file is not there (a refused attempt to create it) */
function realPathOf(path: string): string | null {
  try {
    return realpathSync.native(path);
  } catch {
    try {
      return join(realpathSync.native(dirname(path)), basename(path));
    } catch {
      return null;
    }
  }
}

// files opened for writing remembered by fd (a process truncates what it opened a moment before)
const WRITTEN_MAX = 4096;

/** the daemon's own files are known again this often: a rotated log is a new file */
const IDENTITY_MS = 1000;

export class Ingress {
  private readonly monitorPaths: ReadonlySet<string>;
  /** the files subject processes opened for writing, by `pid:fd`: a truncation or chmod through the fd is named by it after the process is gone */
  private readonly written = new Map<string, string>();
  /** `dev:ino` of each monitor file: a hard link or a symlink to one is still that file */
  private monitorIds = new Set<string>();
  private idsAt = Number.NEGATIVE_INFINITY;

  private readonly areas: ProtectedAreas | null;
  private readonly parentOf: ParentOf;

  /**
   * monitorPaths: the daemon's own files (log, config, rules); a subject writing one is
   * tampering. areas: what a written or changed file is (system, the model's, protected).
   * parentOf: the process table's answer; a name in a mount namespace of its own is reached
   * through the process's root, or its parent's.
   */
  constructor(o: { monitorPaths?: readonly string[]; areas?: ProtectedAreas | null; parentOf?: ParentOf } = {}) {
    this.monitorPaths = new Set((o.monitorPaths ?? []).map((p) => realPathOf(p) ?? p));
    this.areas = o.areas ?? null;
    this.parentOf = o.parentOf ?? (() => 0);
  }

  /** a write to this file (named `path`, really `real`) is a write to the monitor's own files */
  private isMonitorFile(path: string, real: string | null, file: FileStat | null): boolean {
    if (CGROUP_CONTROL.test(path) || (real !== null && CGROUP_CONTROL.test(real))) return true;
    if (this.monitorPaths.has(path) || (real !== null && this.monitorPaths.has(real))) return true;
    if (!file) return false;
    const now = performance.now();
    if (now - this.idsAt > IDENTITY_MS) {
      this.idsAt = now;
      this.monitorIds = new Set();
      for (const p of this.monitorPaths) {
        const st = statOf(p);
        if (st) this.monitorIds.add(`${st.dev}:${st.ino}`);
      }
    }
    return this.monitorIds.has(`${file.dev}:${file.ino}`);
  }

  /** an open, its file named and tagged, with what stat() said of it */
  opened(ev: OpenEvent): Ingested<OpenEvent> {
    // The name as given is what the syscall opened. The fd is only the fallback for a name
    // that is already gone (renamed, deleted): in a fast loop (split, tar) the same fd number
    // names the next file by the time this runs. A negative fd is a refused attempt to write.
    const named = resolveName(ev.pid, ev.dfd, ev.filename);
    // a process in a mount namespace of its own (a container) is looked at through its root
    const where = named ? reachable(ev.pid, named, this.parentOf) : [];
    let byName: FileStat | null = null;
    for (const p of where) if ((byName = statOf(p))) break;
    const byFd = !byName && ev.fd >= 0 ? statOf(`/proc/${ev.pid}/fd/${ev.fd}`) : null;
    const path = byName ? named : byFd ? resolveOpened(ev.pid, ev.fd, ev.dfd, ev.filename) : named;
    const file = byName ?? byFd;
    if (!path) return { event: ev, file };
    // a write is judged on the file it reaches: through a symlink, a hard link or `..` (reads
    // are many and judged by name)
    const real = ev.write ? realPathOf(path) : null;
    const monitorFile = ev.monitor_file === true || (ev.write && this.isMonitorFile(path, real, file));
    if (ev.write && ev.fd >= 0) {
      if (this.written.size >= WRITTEN_MAX) this.written.delete(this.written.keys().next().value as string);
      this.written.set(`${ev.pid}:${ev.fd}`, real ?? path);
    }
    // a write's area: a system file, the model's, a protected one — when the file was there
    // before (an overwrite); a file the open created harms nothing
    const area = ev.write && !monitorFile && ev.created !== true ? this.areas?.classify(path, file ?? undefined, real) : null;
    // every field named, in one order: the hot path then sees one object shape (a spread costs ~2×)
    const out: OpenEvent = {
      type: 'open', time: ev.time, pid: ev.pid, tid: ev.tid, uid: ev.uid, comm: ev.comm, fd: ev.fd, flags: ev.flags, dfd: ev.dfd, filename: ev.filename, path, real_path: real !== null && real !== path ? real : undefined, write: ev.write, created: ev.created, monitor_file: monitorFile || undefined,
      area: area?.area, area_root: area?.root, victims: ev.write ? victimsOf(real ?? path) : undefined,
    };
    return { event: out, file };
  }

  /**
   * A removal, rename, truncation or mode change, named (the new name of a rename too) and
   * told what it touched. The file is looked at where it still is: after a chmod or a
   * truncation at its name, after a rename at its new one; a removed file only by its name.
   */
  changed(ev: FileChangeEvent): FileChangeEvent {
    const out: FileChangeEvent = { ...ev };
    // (through an fd: the process may be gone already; the file it opened for writing there is known)
    const path = ev.fd !== undefined ? (fdPath(ev.pid, ev.fd) ?? this.written.get(`${ev.pid}:${ev.fd}`) ?? null) : resolveName(ev.pid, ev.dfd, ev.filename);
    if (path) out.path = path;
    if (ev.to_filename !== undefined) {
      const to = resolveName(ev.pid, ev.to_dfd ?? -100, ev.to_filename);
      if (to) out.to_path = to;
    }
    const still = ev.op === 'rename' ? out.to_path : ev.op === 'unlink' || ev.op === 'rmdir' ? undefined : path;
    let st: FileStat | null = null;
    if (ev.fd !== undefined) st = statOf(`/proc/${ev.pid}/fd/${ev.fd}`);
    if (!st && still) for (const p of reachable(ev.pid, still, this.parentOf)) if ((st = statOf(p))) break;
    if (st) {
      out.dev = st.dev;
      out.ino = st.ino;
    }
    // a rename is judged on both names: moving a system file away removes it, moving onto one replaces it
    const area = this.areas?.classify(path ?? undefined, st ?? undefined) ?? (out.to_path ? this.areas?.classify(out.to_path) : null);
    if (area) {
      out.area = area.area;
      out.area_root = area.root;
    }
    return out;
  }

  /** a link, its new name made absolute */
  linked(ev: LinkEvent): LinkEvent {
    const path = resolveName(ev.pid, ev.dfd, ev.filename);
    return path ? { type: 'link', time: ev.time, pid: ev.pid, tid: ev.tid, uid: ev.uid, comm: ev.comm, kind: ev.kind, dfd: ev.dfd, filename: ev.filename, path } : ev;
  }
}
