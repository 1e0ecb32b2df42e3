// What the subject is (a cgroup, a v1 freezer group, a uid, or a process tree) and how to find its processes.
import { readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { cgroupOfPid, freezerGroupOfPid, groupPids, isWithin } from './cgroup.js';
import { listPids, readStat } from './sensors/proc/read.js';
import type { SubjectFilter } from './sensors/ebpf/script.js';

export type Subject =
  | { kind: 'cgroup2'; path: string; mount: string }
  | { kind: 'freezer1'; path: string; mount: string }
  | { kind: 'uid'; uid: number }
  /**
   * Without root and without a delegated cgroup (`exec` as a user): the processes that descend
   * from `root`, and those that carry `REDLINE_SUBJECT=marker` in their environment (set for the
   * subject when it starts, it stays with a process that reparents or leaves its session).
   */
  | { kind: 'tree'; root: number; marker: string };

/** the environment variable `exec` sets for a process-tree subject */
export const SUBJECT_ENV = 'REDLINE_SUBJECT';

export function describeSubject(s: Subject): string {
  if (s.kind === 'uid') return `uid ${s.uid}`;
  if (s.kind === 'tree') return `process tree of pid ${s.root}`;
  return `${s.kind === 'cgroup2' ? 'cgroup' : 'v1 freezer group'} ${s.path}`;
}

export function subjectFilter(s: Subject): SubjectFilter | null {
  // the groups below the subject's (a container's, a sandbox's) are its too, in the kernel as in /proc
  if (s.kind === 'cgroup2') return { kind: 'cgroup', path: s.path, level: relative(s.mount, s.path).split('/').filter(Boolean).length };
  if (s.kind === 'uid') return { kind: 'uid', uid: s.uid };
  return null;
}

export function subjectPids(s: Subject): number[] {
  if (s.kind === 'tree') return listPids().filter((pid) => inTree(s, pid));
  if (s.kind !== 'uid') return groupPids(s.path);
  const out: number[] = [];
  for (const pid of listPids()) {
    try {
      if (statSync(`/proc/${pid}`).uid === s.uid) out.push(pid);
    } catch {
      // exited
    }
  }
  return out;
}

/** membership now, from /proc; false once the pid is gone */
export function subjectContains(s: Subject, pid: number): boolean {
  if (s.kind === 'cgroup2') {
    const g = cgroupOfPid(pid, s.mount);
    return g !== null && isWithin(g, s.path);
  }
  if (s.kind === 'freezer1') {
    const g = freezerGroupOfPid(pid, s.mount);
    return g !== null && isWithin(g, s.path);
  }
  if (s.kind === 'tree') return inTree(s, pid);
  try {
    return statSync(`/proc/${pid}`).uid === s.uid;
  } catch {
    return false;
  }
}

/** `pid` descends from the tree's root (started after it), or carries its marker */
function inTree(s: Extract<Subject, { kind: 'tree' }>, pid: number): boolean {
  const root = readStat(s.root);
  let p = readStat(pid);
  for (let depth = 0; p && root && depth < 64; depth++) {
    if (p.pid === s.root) return p.starttime === root.starttime;
    if (p.starttime < root.starttime || p.ppid <= 1) break;
    p = readStat(p.ppid);
  }
  return hasMarker(pid, s.marker);
}

/** the process's environment names the subject's marker (readable for the same user, or root) */
function hasMarker(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`${SUBJECT_ENV}=${marker}`);
  } catch {
    return false;
  }
}
