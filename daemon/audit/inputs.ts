// What `redline audit` was given, as log files: files as they are; a folder, its logs (files
// named *.ndjson, with rotation suffixes such as .ndjson.1 or .ndjson-20261207, not below it);
// a glob the shell did not expand (quoted, or from a script), matched in its folder. The same
// file named twice (a folder and a file in it, a link) is read once.
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GLOB, globToRegExp } from '../glob.js';
import { UnreadableLogError } from './read.js';

const LOG_NAME = /\.ndjson([.-][\w.-]+)?$/;
function list(dir: string, keep: (name: string) => boolean): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new UnreadableLogError(dir, e);
  }
  return names
    .filter(keep)
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => {
      try {
        return statSync(p).isFile();
      } catch {
        return false;
      }
    });
}

/** the log files behind the arguments, each once, in the order given (a folder's and a glob's sorted by name) */
export function expandInputs(args: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (p: string) => {
    let real = p;
    try {
      real = realpathSync(p);
    } catch {
      // unreadable: the reader says so
    }
    if (seen.has(real)) return;
    seen.add(real);
    out.push(p);
  };
  for (const a of args) {
    let isDir = false;
    try {
      isDir = statSync(a).isDirectory();
    } catch {
      isDir = false;
    }
    if (isDir) {
      const logs = list(a, (n) => LOG_NAME.test(n));
      if (logs.length === 0) throw new UnreadableLogError(a, new Error('the folder holds no *.ndjson log'));
      for (const p of logs) add(p);
      continue;
    }
    if (GLOB.test(basename(a)) && !GLOB.test(dirname(a))) {
      let matched: string[] = [];
      try {
        matched = list(dirname(a), (n) => globToRegExp(basename(a)).test(n));
      } catch {
        matched = [];
      }
      if (matched.length === 0) throw new UnreadableLogError(a, new Error('no file matches this pattern'));
      for (const p of matched) add(p);
      continue;
    }
    add(a);
  }
  return out;
}
