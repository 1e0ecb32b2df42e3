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

/** the absolute path of `name` as the process saw it: relative to its cwd or to a dirfd */
export function resolveName(pid: number, dfd: number, name: string): string | null {
  // `/var//log/./x` is /var/log/x: a file is never told apart by how its name was spelled
  if (isAbsolute(name)) return normalize(name);
  const base = dfd === -100 ? link(`/proc/${pid}/cwd`) : realFile(link(`/proc/${pid}/fd/${dfd}`));
  return base ? join(base, name) : null;
}

/** the opened file: through the fd when it is still open (exact), else by name */
export function resolveOpened(pid: number, fd: number, dfd: number, name: string): string | null {
  return realFile(link(`/proc/${pid}/fd/${fd}`)) ?? resolveName(pid, dfd, name);
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
