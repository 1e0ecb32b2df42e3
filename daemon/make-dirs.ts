// mkdir -p that fails instead of looping: Node 20's mkdirSync(…, { recursive: true }) never
// returns for a path under /proc (mkdir there says ENOENT though the parent exists, and Node
// retries forever). `--log /proc/nope/x` hung the daemon with no output until it was killed.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** creates `dir` and its missing parents; throws the first failure (ENOENT, EACCES, ENOTDIR…) */
export function makeDirs(dir: string, mode?: number): void {
  const missing: string[] = [];
  let d = resolve(dir);
  for (;;) {
    try {
      if (statSync(d).isDirectory()) break;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${d}'`), { code: 'ENOTDIR', path: d });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    missing.push(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m, mode === undefined ? undefined : { mode });
    } catch (e) {
      // another process made it meanwhile
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}
