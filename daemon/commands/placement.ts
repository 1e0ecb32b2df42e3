// Where `exec` puts its subject. As root: a fresh group under <cgroup v2>/redline/. As a user:
// a group of its own below the cgroup this process runs in, when that subtree is delegated to
// the user (`systemd-run --user --scope -p Delegate=yes redline exec …`, or a subtree an
// administrator chowned); else the process tree, marked through its environment, frozen with
// SIGSTOP (weaker: a process of the same user outside the tree could send SIGCONT).
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { cgroupOfPid, createFreshGroup, findCgroupV2Mount, removeGroup } from '../cgroup.js';
import type { Subject } from '../subject.js';

export interface Placement {
  subject: Subject;
  /** the cgroup made for the subject (removed at the end); null for a process tree */
  group: string | null;
  /** how, for the log and the user */
  how: 'cgroup' | 'delegated-cgroup' | 'process-tree';
  /** why not a cgroup, for a process tree */
  why?: string;
}

/** the placement, or a reason the command must stop */
export function placeSubject(trial: string, isRoot = process.getuid?.() === 0): Placement | string {
  const mount = findCgroupV2Mount();
  if (isRoot) {
    if (!mount) return 'exec needs cgroup v2 (no cgroup2 mount found)';
    const group = join(mount, 'redline', trial);
    const taken = createFreshGroup(group);
    if (taken) return `trial ${trial}: ${taken}`;
    return { subject: { kind: 'cgroup2', path: group, mount }, group, how: 'cgroup' };
  }
  const tree = (why: string): Placement => ({ subject: { kind: 'tree', root: 0, marker: trial }, group: null, how: 'process-tree', why });
  if (!mount) return tree('no cgroup v2 mount');
  const own = cgroupOfPid(process.pid, mount);
  if (!own) return tree('this process is in no cgroup v2 group');
  try {
    // moving the subject in needs the common parent's cgroup.procs; freezing needs the group's own files
    accessSync(join(own, 'cgroup.procs'), constants.W_OK);
  } catch {
    return tree(`${own} is not delegated to this user (run under \`systemd-run --user --scope -p Delegate=yes\` for a cgroup)`);
  }
  const group = join(own, `redline-${trial}`);
  try {
    const taken = createFreshGroup(group);
    if (taken) return `trial ${trial}: ${taken}`;
    accessSync(join(group, 'cgroup.procs'), constants.W_OK);
    accessSync(join(group, 'cgroup.freeze'), constants.W_OK);
  } catch (err) {
    removeGroup(group);
    return tree(`cannot make a group in ${own}: ${(err as Error).message}`);
  }
  return { subject: { kind: 'cgroup2', path: group, mount }, group, how: 'delegated-cgroup' };
}
