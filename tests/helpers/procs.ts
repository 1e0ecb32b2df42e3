// Bystander processes for tests, always killed afterwards.
import { readFileSync } from 'node:fs';
import { type ChildProcess, spawn } from 'node:child_process';

const started: ChildProcess[] = [];

/** a `sleep` in its own process group, outside any subject */
export function bystander(marker = ''): number {
  const args = marker ? ['-c', `exec -a ${marker} sleep 600`] : ['-c', 'exec sleep 600'];
  const child = spawn('/bin/bash', args, { stdio: 'ignore', detached: true });
  started.push(child);
  return child.pid as number;
}

/** the process runs still: it exists and is not a zombie (killed, waiting for its new parent to reap it) */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

export function killBystanders(): void {
  for (const c of started.splice(0)) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
