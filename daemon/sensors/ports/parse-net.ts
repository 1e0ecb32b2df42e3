// Pure parser for /proc/net/{tcp,tcp6,udp,udp6}: each socket's addresses, state, owner
// uid and inode (which /proc/PID/fd links name as socket:[INODE]).

export type Proto = 'tcp' | 'tcp6' | 'udp' | 'udp6';

export interface NetSocket {
  proto: Proto;
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  /** the kernel's TCP state number (0x0A = LISTEN; UDP sockets bound to a port show 07) */
  state: number;
  uid: number;
  inode: number;
}

export const TCP_LISTEN = 0x0a;
export const UDP_UNCONNECTED = 0x07;

/** the kernel prints IPv4 as one little-endian u32, IPv6 as four of them */
export function decodeAddr(hex: string): string | null {
  if (hex.length === 8) {
    const b = Buffer.from(hex, 'hex');
    if (b.length !== 4) return null;
    return `${b[3]}.${b[2]}.${b[1]}.${b[0]}`;
  }
  if (hex.length === 32) {
    const words: string[] = [];
    for (let i = 0; i < 4; i++) {
      const w = Buffer.from(hex.slice(i * 8, i * 8 + 8), 'hex').reverse().toString('hex');
      words.push(w.slice(0, 4), w.slice(4));
    }
    // compact form: strip leading zeros, collapse the longest run of zero groups
    const groups = words.map((g) => g.replace(/^0+(?=.)/, ''));
    const joined = groups.join(':');
    const runs = [...joined.matchAll(/(?:^|:)0(?::0)+(?::|$)/g)].sort((a, b) => b[0].length - a[0].length);
    const longest = runs[0];
    if (!longest || longest.index === undefined) return joined;
    return `${joined.slice(0, longest.index)}::${joined.slice(longest.index + longest[0].length)}`;
  }
  return null;
}

export function parseProcNet(text: string, proto: Proto): NetSocket[] {
  const out: NetSocket[] = [];
  const lines = text.split('\n');
  for (const line of lines.slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [local, remote, state, , , , uid, , inode] = f.slice(1);
    const [la, lp] = (local ?? '').split(':');
    const [ra, rp] = (remote ?? '').split(':');
    const localAddr = la ? decodeAddr(la) : null;
    const remoteAddr = ra ? decodeAddr(ra) : null;
    if (localAddr === null || remoteAddr === null || lp === undefined || rp === undefined) continue;
    out.push({
      proto,
      localAddr,
      localPort: Number.parseInt(lp, 16),
      remoteAddr,
      remotePort: Number.parseInt(rp, 16),
      state: Number.parseInt(state ?? '', 16),
      uid: Number(uid),
      inode: Number(inode),
    });
  }
  return out;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms */
export function isLoopback(addr: string): boolean {
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return v4.startsWith('127.') || addr === '::1' || /^::ffff:7f[0-9a-f]{2}:/.test(addr);
}
