// What a trial is told to watch must be there before it starts: a trial that watched no
// weights (a typo in --weights) or writes no log is not a safe trial, it is no trial. Both
// are checked before anything starts, and fail as usage errors (exit 2) with the reason.
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeDirs } from '../make-dirs.js';
import { detectFormat, FORMAT_BYTES } from '../sensors/weights/format.js';
// as the weights registry: a file of unknown format this big still counts as weights; folders walked this deep
import { BIG_ENOUGH, MAX_DEPTH } from '../sensors/weights/registry.js';
/** entries looked at per folder given, at most (a weights file is near the top of a model folder) */
const MAX_ENTRIES = 20_000;

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return 'no such file or folder';
  if (err.code === 'EACCES' || err.code === 'EPERM') return 'permission denied';
  return err.message ?? String(e);
}

/** can the log be opened for appending (its folders created)? null when it can, else why not */
export function logProblem(path: string): string | null {
  const existed = existsSync(path);
  try {
    makeDirs(dirname(path));
    const fd = openSync(path, 'a', 0o600);
    closeSync(fd);
    // the log itself is created by its writer, with its own mode and group
    if (!existed) unlinkSync(path);
    return null;
  } catch (e) {
    return `--log ${path}: cannot create the log (${reason(e)})`;
  }
}

function isWeights(path: string, size: number): boolean {
  if (size >= BIG_ENOUGH) return true;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(FORMAT_BYTES);
    const n = readSync(fd, head, 0, FORMAT_BYTES, 0);
    return detectFormat(head.subarray(0, n), size).format !== 'unknown';
  } finally {
    closeSync(fd);
  }
}

/** does this folder hold a file the registry would take as weights? */
function holdsWeights(dir: string): boolean {
  let seen = 0;
  const walk = (d: string, depth: number): boolean => {
    if (depth >= MAX_DEPTH) return false;
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return false;
    }
    for (const name of names) {
      if (++seen > MAX_ENTRIES) return false;
      const p = join(d, name);
      try {
        const st = statSync(p);
        if (st.isFile() && isWeights(p, st.size)) return true;
        if (st.isDirectory() && walk(p, depth + 1)) return true;
      } catch {
        // a dangling link, a file gone meanwhile
      }
    }
    return false;
  };
  return walk(dir, 0);
}

/** each --weights path names a file, or a folder with a weights file in it; the problems found */
export function weightsProblems(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    try {
      const st = statSync(p);
      if (st.isDirectory()) {
        if (!holdsWeights(p)) out.push(`--weights ${p}: the folder holds no weights file (no safetensors, GGUF or PyTorch file, and none of 64 MiB or more)`);
      } else if (!st.isFile()) out.push(`--weights ${p}: not a regular file or a folder`);
    } catch (e) {
      out.push(`--weights ${p}: ${reason(e)}`);
    }
  }
  return out;
}
