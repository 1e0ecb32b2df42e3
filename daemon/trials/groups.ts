// Which cgroups are trials under `run --trials-under SPEC`, and what their names say.
// SPEC is a group (each child group of it is one trial) or a glob in its last part
// (`/sys/fs/cgroup/system.slice/docker-*.scope`: each matching sibling is one trial).
// Decision: the glob is allowed in the last part only; the folder above it is the parent the
// kernel filters on, and the match is made here.
import { readdirSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { GLOB, globToRegExp } from '../glob.js';

export interface TrialSpec {
  /** the group the kernel filters on: every trial is below it */
  parent: string;
  /** a trial's own group is a child of parent whose name matches (null: every child) */
  pattern: RegExp | null;
  /** as given, for the log */
  given: string;
}

/** SPEC (absolute, or relative to the cgroup v2 mount) → the parent and the pattern */
export function parseTrialSpec(spec: string, mount: string): TrialSpec | string {
  const path = spec.startsWith(mount) ? spec : join(mount, spec);
  const last = basename(path);
  if (GLOB.test(dirname(path))) return `--trials-under ${spec}: a glob may only be in the last part of the path`;
  if (!GLOB.test(last)) return { parent: path, pattern: null, given: spec };
  return { parent: dirname(path), pattern: globToRegExp(last), given: spec };
}

/** the trials' groups now: the parent's child groups (those that match) */
export function listTrialGroups(spec: TrialSpec): string[] {
  try {
    return readdirSync(spec.parent, { withFileTypes: true })
      .filter((e) => e.isDirectory() && (spec.pattern === null || spec.pattern.test(e.name)))
      .map((e) => join(spec.parent, e.name));
  } catch {
    return [];
  }
}

/** the trial group a cgroup is in (itself or an ancestor that is a child of the parent), or null */
export function trialGroupOf(group: string, spec: TrialSpec): string | null {
  const rel = relative(spec.parent, group);
  if (rel === '' || rel.startsWith('..')) return null;
  const first = rel.split('/')[0] as string;
  if (spec.pattern !== null && !spec.pattern.test(first)) return null;
  return join(spec.parent, first);
}

export interface TrialIdentity {
  /** the trial id: the group's name */
  id: string;
  /** a Docker, Podman or containerd container id in the group's name */
  container_id?: string;
  /** a Kubernetes pod uid in the group's name (the systemd driver's `_` read back as `-`) */
  pod_uid?: string;
}

const CONTAINER = /(?:^|[-_.])([0-9a-f]{64})(?:\.scope)?$/;
const POD = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/;

export function trialIdentity(group: string): TrialIdentity {
  const name = basename(group);
  const out: TrialIdentity = { id: name };
  const c = CONTAINER.exec(name);
  if (c) out.container_id = c[1];
  const p = POD.exec(name);
  if (p) out.pod_uid = (p[1] as string).replace(/_/g, '-');
  return out;
}
