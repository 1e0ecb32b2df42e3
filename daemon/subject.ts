// What the subject is (a cgroup, a v1 freezer group, or a uid) and how to find its processes.
import { statSync } from 'node:fs';
import { relative } from 'node:path';
import { cgroupOfPid, freezerGroupOfPid, groupPids, isWithin } from './cgroup.js';
import { listPids } from './sensors/proc/read.js';
import type { SubjectFilter } from './sensors/ebpf/script.js';

export type Subject =
  | { kind: 'cgroup2'; path: string; mount: string }
  | { kind: 'freezer1'; path: string; mount: string }
  | { kind: 'uid'; uid: number };

export function describeSubject(s: Subject): string {
  return s.kind === 'uid' ? `uid ${s.uid}` : `${s.kind === 'cgroup2' ? 'cgroup' : 'v1 freezer group'} ${s.path}`;
}

export function subjectFilter(s: Subject): SubjectFilter | null {
  // the groups below the subject's (a container's, a sandbox's) are its too, in the kernel as in /proc
  if (s.kind === 'cgroup2') return { kind: 'cgroup', path: s.path, level: relative(s.mount, s.path).split('/').filter(Boolean).length };
  if (s.kind === 'uid') return { kind: 'uid', uid: s.uid };
  return null;
}

export function subjectPids(s: Subject): number[] {
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
  try {
    return statSync(`/proc/${pid}`).uid === s.uid;
  } catch {
    return false;
  }
}
