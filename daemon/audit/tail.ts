// The newest record of a log that a test accepts, read from the file's end (its last
// `maxBytes`, 1 MiB by default) without reading the whole log: a daemon that starts after
// another was lost looks there for what its watchdog wrote.
import fs from 'node:fs';

export function lastMatching(path: string, accept: (r: Record<string, unknown>) => boolean, maxBytes = 1 << 20): Record<string, unknown> | null {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const n = Math.min(size, maxBytes);
    const buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, size - n);
    const lines = buf.toString('utf8').split('\n');
    // the first piece may be the tail of a longer line when the file is longer than maxBytes
    for (let i = lines.length - 1; i >= (n < size ? 1 : 0); i--) {
      const line = lines[i] as string;
      if (line === '') continue;
      try {
        const r = JSON.parse(line) as unknown;
        if (r !== null && typeof r === 'object' && !Array.isArray(r) && accept(r as Record<string, unknown>)) return r as Record<string, unknown>;
      } catch {
        // a torn or foreign line: keep looking further back
      }
    }
    return null;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}
