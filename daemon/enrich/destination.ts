// Where a reader of the weights sends its bytes, named while it is alive: a file's path, or a
// socket's peer (from the reader's own /proc/PID/net tables: its network namespace).
import { readFileSync, readlinkSync } from 'node:fs';
import { parseProcNet, type Proto } from '../sensors/ports/parse-net.js';
import { fdOnInode } from './paths.js';

/** where a reader's bytes went: a file or a socket */
export interface Destination {
  dev: number;
  ino: number;
  fd: number;
  socket: boolean;
  bytes: number;
  /** named when first written (the process may be gone when it is judged) */
  path: string | null;
  addr: string | null;
  port: number | null;
}

/** names where a reader's bytes go while it is alive: a file's path, a socket's peer */
export function nameDestination(pid: number, d: Destination): void {
  if (!d.socket) {
    const fd = d.fd >= 0 ? d.fd : fdOnInode(pid, d.dev, d.ino);
    if (fd === null) return;
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith('/')) d.path = link;
    } catch {
      // closed meanwhile
    }
    return;
  }
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6'] as Proto[]) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${proto}`, 'utf8');
    } catch {
      continue;
    }
    const s = parseProcNet(text, proto).find((x) => x.inode === d.ino);
    if (s) {
      d.addr = s.remoteAddr;
      d.port = s.remotePort;
      return;
    }
  }
}
