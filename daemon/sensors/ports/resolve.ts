// A process's sockets through /proc: the inodes its fds name, looked up in its own
// /proc/PID/net tables (its network namespace, which may not be the host's).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type NetSocket, type Proto, parseProcNet, TCP_LISTEN, UDP_UNCONNECTED } from './parse-net.js';

const PROTOS: Proto[] = ['tcp', 'tcp6', 'udp', 'udp6'];

export function socketInode(pid: number, fd: number): number | null {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * netSockets, off the event loop: the kernel builds these files by walking its socket hash
 * tables (about a millisecond each even when nearly empty), which the periodic poll must
 * not spend on the thread that turns kernel events into alerts
 */
export async function netSocketsAsync(pid: number): Promise<NetSocket[]> {
  const tables = await Promise.all(PROTOS.map((proto) => readFile(`/proc/${pid}/net/${proto}`, 'utf8').then((text) => parseProcNet(text, proto), () => [] as NetSocket[])));
  return tables.flat();
}

/** the socket inodes a process holds, with the fd of each */
export function socketInodes(pid: number): Map<number, number> {
  const inodes = new Map<number, number>();
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const name of names) {
    const inode = socketInode(pid, Number(name));
    if (inode !== null) inodes.set(inode, Number(name));
  }
  return inodes;
}

export function isListening(s: NetSocket): boolean {
  return s.proto.startsWith('tcp') ? s.state === TCP_LISTEN : s.state === UDP_UNCONNECTED && s.localPort > 0;
}

/** every socket in the network namespace `pid` lives in; unreadable tables are skipped */
export function netSockets(pid: number): NetSocket[] {
  const out: NetSocket[] = [];
  for (const proto of PROTOS) {
    try {
      out.push(...parseProcNet(readFileSync(`/proc/${pid}/net/${proto}`, 'utf8'), proto));
    } catch {
      // gone, or this protocol is not compiled in
    }
  }
  return out;
}

/** the sockets a process already listens on (a replica found to be one after it listened) */
export function listeningSockets(pid: number): { fd: number; socket: NetSocket }[] {
  const inodes = socketInodes(pid);
  if (inodes.size === 0) return [];
  const out: { fd: number; socket: NetSocket }[] = [];
  for (const s of netSockets(pid)) {
    const fd = inodes.get(s.inode);
    if (fd !== undefined && isListening(s)) out.push({ fd, socket: s });
  }
  return out;
}
