// --log-group: the group allowed to read the audit log, by name or number.
import { execFileSync } from 'node:child_process';

/** the group's id, or null when there is no such group (names go through NSS, as `ls -l` would) */
export function groupId(group: string | number): number | null {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  try {
    const entry = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const gid = Number(entry.split(':')[2]);
    return Number.isInteger(gid) ? gid : null;
  } catch {
    return null;
  }
}
