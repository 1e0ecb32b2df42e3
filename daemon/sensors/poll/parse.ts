// Pure parsers for what the poll sensor reads: /proc/PID/fdinfo/N and /proc/PID/maps.

export interface FdInfo {
  /** the file position: for a file read or written in order, the bytes moved so far */
  pos: number;
  /** open(2) flags (octal in the file) */
  flags: number;
}

/** the access mode bits of open(2)'s flags */
const O_ACCMODE = 0o3;

export function parseFdinfo(text: string): FdInfo | null {
  const pos = /^pos:\s+(\d+)$/m.exec(text);
  const flags = /^flags:\s+([0-7]+)$/m.exec(text);
  if (!pos || !flags) return null;
  return { pos: Number(pos[1]), flags: Number.parseInt(flags[1] as string, 8) };
}

/** opened for writing (O_WRONLY or O_RDWR) */
export function writable(flags: number): boolean {
  const mode = flags & O_ACCMODE;
  return mode === 1 || mode === 2;
}

export interface Mapping {
  /** st_dev as stat() reports it */
  dev: number;
  ino: number;
  /** bytes of the file this mapping covers */
  bytes: number;
  /** mapped shared and writable: writes reach the file */
  sharedWrite: boolean;
  path: string;
}

/** makedev as glibc encodes it (what fs.stat's dev is) */
export function makeDev(major: number, minor: number): number {
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) * 2 ** 32);
}

/**
 * The file-backed mappings of /proc/PID/maps, one per line that names a file by inode
 * ("start-end perms offset major:minor inode path"). Anonymous, [heap], [stack] and the like
 * have inode 0 and are left out.
 */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) [0-9a-f]+ ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const ino = Number(m[6]);
    if (ino === 0) continue;
    const perms = m[3] as string;
    out.push({
      dev: makeDev(Number.parseInt(m[4] as string, 16), Number.parseInt(m[5] as string, 16)),
      ino,
      bytes: Number.parseInt(m[2] as string, 16) - Number.parseInt(m[1] as string, 16),
      sharedWrite: perms[1] === 'w' && perms[3] === 's',
      path: m[7] ?? '',
    });
  }
  return out;
}
