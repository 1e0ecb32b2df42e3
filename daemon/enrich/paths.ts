// Naming the file behind a raw open/link event, while the process may still hold it.
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';

function link(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch {
    return null;
  }
}

/** a readlink of /proc/PID/fd/N that names a real file (not a pipe, socket or deleted file) */
function realFile(target: string | null): string | null {
  if (!target || !target.startsWith('/') || target.endsWith(' (deleted)')) return null;
  return target;
}

let ownMountNs: number | null | undefined;

/** a process's parent pid, 0 when unknown (the process table's answer: it remembers the exited) */
export type ParentOf = (pid: number) => number;

function mountNsOf(pid: number | 'self'): number | null {
  try {
    return statSync(`/proc/${pid}/ns/mnt`).ino;
  } catch {
    return null;
  }
}

/**
 * Where the daemon can reach a path the process named: the path itself when the process
 * shares the daemon's mount namespace, else through its root (/proc/PID/root/…: a container's
 * own mounts, a tmpfs only it sees), or its parent's when it is gone already (the sandbox's
 * shell outlives its cp). The first of the list that exists is the file.
 */
export function reachable(pid: number, path: string, parentOf: ParentOf): string[] {
  ownMountNs ??= mountNsOf('self');
  const ppid = parentOf(pid);
  const ns = mountNsOf(pid) ?? (ppid > 0 ? mountNsOf(ppid) : null);
  if (ns === null || ns === ownMountNs) return [path];
  return [`/proc/${pid}/root${path}`, ...(ppid > 0 ? [`/proc/${ppid}/root${path}`] : [])];
}

/** the absolute path of `name` as the process saw it: relative to its cwd or to a dirfd */
export function resolveName(pid: number, dfd: number, name: string): string | null {
  // `/var//log/./x` is /var/log/x: a file is never told apart by how its name was spelled
  if (isAbsolute(name)) return normalize(name);
  const base = dfd === -100 ? link(`/proc/${pid}/cwd`) : realFile(link(`/proc/${pid}/fd/${dfd}`));
  return base ? join(base, name) : null;
}

/** the file behind a process's fd, while it holds it (null: gone, or a pipe, socket or deleted file) */
export function fdPath(pid: number, fd: number): string | null {
  return realFile(link(`/proc/${pid}/fd/${fd}`));
}

/** the opened file: through the fd when it is still open (exact), else by name */
export function resolveOpened(pid: number, fd: number, dfd: number, name: string): string | null {
  return fdPath(pid, fd) ?? resolveName(pid, dfd, name);
}

/**
 * The process's fd on the file (dev, ino), for bytes reported without one (io_uring
 * completions carry the request's file, not its fd); null when it holds none now.
 */
export function fdOnInode(pid: number, dev: number, ino: number): number | null {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  for (const fd of fds) {
    try {
      const st = statSync(`/proc/${pid}/fd/${fd}`);
      if (st.ino === ino && st.dev === dev) return Number(fd);
    } catch {
      // closed meanwhile
    }
  }
  return null;
}

/** what stat() said of an opened file, while the process still held it */
export interface FileStat {
  dev: number;
  ino: number;
  size: number;
  file: boolean;
}

export function statOf(path: string): FileStat | null {
  try {
    // a name that is gone is common (short-lived files): no exception built for it
    const st = statSync(path, { throwIfNoEntry: false });
    return st ? { dev: st.dev, ino: st.ino, size: st.size, file: st.isFile() } : null;
  } catch {
    return null;
  }
}
