// cgroup v2 (and v1 freezer) plumbing: find the mounts, create, list, remove groups.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCgroupV1, parseCgroupV2 } from './sensors/proc/parse-stat.js';

interface Mount {
  point: string;
  fstype: string;
  superOptions: string;
}

function mounts(): Mount[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    out.push({ point: unescapeOctal(left[4] ?? ''), fstype: right[0] ?? '', superOptions: right[2] ?? '' });
  }
  return out;
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** `/sys/fs/cgroup` on pure-v2 hosts, `/sys/fs/cgroup/unified` on hybrid ones, null without v2 */
export function findCgroupV2Mount(): string | null {
  const m = mounts().find((x) => x.fstype === 'cgroup2');
  return m ? m.point : null;
}

export function findFreezerV1Mount(): string | null {
  const m = mounts().find((x) => x.fstype === 'cgroup' && x.superOptions.split(',').includes('freezer'));
  return m ? m.point : null;
}

export function isV2Group(path: string): boolean {
  return existsSync(join(path, 'cgroup.events'));
}

/** the v2 group a pid is in, as an absolute path under the mount, or null */
export function cgroupOfPid(pid: number, v2mount: string): string | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return null;
  }
  const rel = parseCgroupV2(text);
  return rel === null ? null : join(v2mount, rel);
}

export function freezerGroupOfPid(pid: number, freezerMount: string): string | null {
  try {
    const rel = parseCgroupV1(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), 'freezer');
    return rel === null ? null : join(freezerMount, rel);
  } catch {
    return null;
  }
}

/** true when `group` is `root` or below it */
export function isWithin(group: string, root: string): boolean {
  return group === root || group.startsWith(root.endsWith('/') ? root : `${root}/`);
}

export function createGroup(path: string): void {
  mkdirSync(path, { recursive: true });
}

/**
 * A fresh group at `path` for a subject: an empty leftover of an earlier run (perhaps left
 * frozen, or with limits set) is removed and made anew, so nothing of it carries over. One
 * that still holds processes is never touched: returns why, and the caller refuses.
 */
export function createFreshGroup(path: string): string | null {
  if (existsSync(path)) {
    if (isPopulated(path)) {
      const pids = groupPids(path);
      return `${path} already holds processes (${pids.slice(0, 8).join(' ')}${pids.length > 8 ? ' …' : ''}): a trial of that name is still running, or an earlier one was left frozen; end it (echo 1 > ${join(path, 'cgroup.kill')}) or choose another name`;
    }
    if (!removeGroup(path)) return `${path} is left from an earlier run and cannot be removed`;
  }
  mkdirSync(path, { recursive: true });
  return null;
}

/** every pid in the group and the groups below it */
export function groupPids(path: string): number[] {
  const out: number[] = [];
  const walk = (dir: string, depth: number): void => {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line) out.push(Number(line));
      if (depth > 32) return;
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name), depth + 1);
    } catch {
      // a subgroup removed while we walk it
    }
  };
  walk(path, 0);
  return out;
}

export function readEvents(path: string): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync(join(path, 'cgroup.events'), 'utf8').split('\n')) {
      const [k, v] = line.split(' ');
      if (k && v !== undefined) out[k] = Number(v);
    }
  } catch {
    // group gone
  }
  return out;
}

export function isPopulated(path: string): boolean {
  if (isV2Group(path)) return readEvents(path).populated === 1;
  return groupPids(path).length > 0;
}

export function movePid(path: string, pid: number): void {
  writeFileSync(join(path, 'cgroup.procs'), String(pid));
}

/** removes the group and its subgroups (deepest first); returns false if some are still busy */
export function removeGroup(path: string): boolean {
  let ok = true;
  try {
    for (const e of readdirSync(path, { withFileTypes: true })) if (e.isDirectory()) ok = removeGroup(join(path, e.name)) && ok;
    rmdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') ok = false;
  }
  return ok;
}
