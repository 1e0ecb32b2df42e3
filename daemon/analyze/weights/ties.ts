// What ties a replica outside the subject to the trial: a job file the subject wrote (a
// crontab line, an `at` job, a runner's spool file, a unit file, a script) whose text names
// what the replica runs. Matched by content, not by where the job went: cron, at,
// systemd and a job runner each move, copy or exec the job their own way.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { namesCommand, telling } from '../../process.js';
import { readCmdline } from '../../sensors/proc/read.js';

/** files remembered; the newest win */
const MAX_FILES = 1024;
/** a job file is small: bigger files are not read to look for a command */
const MAX_JOB_BYTES = 64 * 1024;
/** files read looking for a job, newest first, before giving up (the tie is then `command` or `time`) */
const MAX_READS = 64;
/** a folder with more entries than this is not searched for a moved job */
const MAX_FOLDER = 4096;

export interface JobTie {
  /** the file the subject wrote, where it is now (a spool renames the job it takes) */
  job_file: string;
  /** the longest of the replica's telling arguments, all of which the file names */
  job_arg: string;
}

export class SubjectWrites {
  /** paths the subject opened for writing or named by a rename or link, oldest first */
  private readonly paths = new Set<string>();

  wrote(path: string): void {
    this.paths.delete(path);
    this.paths.add(path);
    if (this.paths.size > MAX_FILES) this.paths.delete(this.paths.values().next().value as string);
  }

  /**
   * The newest small file the subject wrote whose text names the command `pid` runs (read
   * now: the replica is alive when its load is reported). A job the subject wrote and a
   * runner moved (cron, at and most spools rename what they take) is looked for in the
   * folder it was written to.
   */
  tieOf(pid: number): JobTie | null {
    const args = telling(readCmdline(pid) ?? []);
    if (args.length === 0) return null;
    const folders = new Set<string>();
    // runs before the load is reported (and the replica stopped): a subject that wrote many
    // files must not make it slow, so only the newest few are read
    let budget = MAX_READS;
    for (const path of [...this.paths].reverse()) {
      const here = small(path);
      const tries = here ? [path] : folders.has(dirname(path)) ? [] : siblings(dirname(path));
      folders.add(dirname(path));
      for (const p of tries) {
        if (budget-- <= 0) return null;
        const text = readSmall(p);
        const arg = text === null ? null : namesCommand(text, args);
        if (arg) return { job_file: p, job_arg: arg };
      }
    }
    return null;
  }
}

function siblings(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  if (names.length > MAX_FOLDER) return [];
  return names.map((n) => join(dir, n)).filter(small);
}

function small(p: string): boolean {
  try {
    const st = statSync(p);
    return st.isFile() && st.size <= MAX_JOB_BYTES;
  } catch {
    return false;
  }
}

function readSmall(p: string): string | null {
  try {
    return readFileSync(p, 'latin1');
  } catch {
    return null;
  }
}
