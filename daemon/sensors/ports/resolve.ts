// Names the address a listen() bound: the fd's socket inode, looked up in the process's
// own /proc/PID/net tables (its network namespace, which may not be the host's).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { ListenEvent } from '../../events.js';
import { type Proto, parseProcNet, TCP_LISTEN, UDP_UNCONNECTED } from './parse-net.js';

const PROTOS: Proto[] = ['tcp', 'tcp6', 'udp', 'udp6'];

export function socketInode(pid: number, fd: number): number | null {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** fills in proto, addr and port when the socket can still be found */
export function resolveListen(ev: ListenEvent): void {
  const inode = socketInode(ev.pid, ev.fd);
  if (inode === null) return;
  for (const proto of PROTOS) {
    let text: string;
    try {
      text = readFileSync(`/proc/${ev.pid}/net/${proto}`, 'utf8');
    } catch {
      continue;
    }
    const s = parseProcNet(text, proto).find((x) => x.inode === inode);
    if (s) {
      ev.proto = proto;
      ev.addr = s.localAddr;
      ev.port = s.localPort;
      return;
    }
  }
}

/** the sockets a process already listens on (a replica found to be one after it listened) */
export function listeningSockets(pid: number): { fd: number; proto: Proto; addr: string; port: number }[] {
  const inodes = new Map<number, number>();
  try {
    for (const name of readdirSync(`/proc/${pid}/fd`)) {
      const inode = socketInode(pid, Number(name));
      if (inode !== null) inodes.set(inode, Number(name));
    }
  } catch {
    return [];
  }
  if (inodes.size === 0) return [];
  const out: { fd: number; proto: Proto; addr: string; port: number }[] = [];
  for (const proto of PROTOS) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${proto}`, 'utf8');
    } catch {
      continue;
    }
    for (const s of parseProcNet(text, proto)) {
      const fd = inodes.get(s.inode);
      const listening = proto.startsWith('tcp') ? s.state === TCP_LISTEN : s.state === UDP_UNCONNECTED && s.localPort > 0;
      if (fd !== undefined && listening) out.push({ fd, proto, addr: s.localAddr, port: s.localPort });
    }
  }
  return out;
}
