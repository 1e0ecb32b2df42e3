// The first stage of the pipeline: it names the file behind a raw open/link (the kernel gave
// a name relative to a dirfd or the cwd) and tags the monitor's own files. It returns a new
// event; the one it got stays as the sensor made it. Other event types pass it unchanged.
import { statSync } from 'node:fs';
import type { LinkEvent, OpenEvent, SensorEvent } from './events.js';
import { resolveName, resolveOpened } from './sensors/weights/paths.js';

/** what stat() said of an opened file, while the process still held it */
export interface FileStat {
  dev: number;
  ino: number;
  size: number;
  file: boolean;
}

export interface Ingested<E extends SensorEvent = SensorEvent> {
  event: E;
  /** for opens: the file that was opened, when it could be looked at */
  file: FileStat | null;
}

// writing these moves a process between cgroups or changes the group's state
const CGROUP_CONTROL = /\/cgroup\.(procs|threads|freeze|kill|subtree_control)$|\/freezer\.state$|\/tasks$/;

export function statOf(path: string): FileStat | null {
  try {
    // a name that is gone is common (short-lived files): no exception built for it
    const st = statSync(path, { throwIfNoEntry: false });
    return st ? { dev: st.dev, ino: st.ino, size: st.size, file: st.isFile() } : null;
  } catch {
    return null;
  }
}

export class Ingress {
  private readonly monitorPaths: ReadonlySet<string>;

  /** monitorPaths: the daemon's own files (log, config, rules); a subject writing one is tampering */
  constructor(monitorPaths: readonly string[] = []) {
    this.monitorPaths = new Set(monitorPaths);
  }

  /** an open, its file named and tagged, with what stat() said of it */
  opened(ev: OpenEvent): Ingested<OpenEvent> {
    // The name as given is what the syscall opened. The fd is only the fallback for a name
    // that is already gone (renamed, deleted): in a fast loop (split, tar) the same fd number
    // names the next file by the time this runs. A negative fd is a refused attempt to write.
    const named = resolveName(ev.pid, ev.dfd, ev.filename);
    const byName = named ? statOf(named) : null;
    const byFd = !byName && ev.fd >= 0 ? statOf(`/proc/${ev.pid}/fd/${ev.fd}`) : null;
    const path = byName ? named : byFd ? resolveOpened(ev.pid, ev.fd, ev.dfd, ev.filename) : named;
    if (!path) return { event: ev, file: byName ?? byFd };
    // every field named, in one order: the hot path then sees one object shape (a spread costs ~2×)
    const monitorFile = ev.monitor_file === true || (ev.write && (CGROUP_CONTROL.test(path) || this.monitorPaths.has(path)));
    const out: OpenEvent = {
      type: 'open', time: ev.time, pid: ev.pid, tid: ev.tid, uid: ev.uid, comm: ev.comm, fd: ev.fd, flags: ev.flags, dfd: ev.dfd, filename: ev.filename, path, write: ev.write, monitor_file: monitorFile || undefined,
    };
    return { event: out, file: byName ?? byFd };
  }

  /** a link, its new name made absolute */
  linked(ev: LinkEvent): LinkEvent {
    const path = resolveName(ev.pid, ev.dfd, ev.filename);
    return path ? { type: 'link', time: ev.time, pid: ev.pid, tid: ev.tid, uid: ev.uid, comm: ev.comm, kind: ev.kind, dfd: ev.dfd, filename: ev.filename, path } : ev;
  }
}
