// Bystander processes for tests, always killed afterwards.
import { type ChildProcess, spawn } from 'node:child_process';

const started: ChildProcess[] = [];

/** a `sleep` in its own process group, outside any subject */
export function bystander(marker = ''): number {
  const args = marker ? ['-c', `exec -a ${marker} sleep 600`] : ['-c', 'exec sleep 600'];
  const child = spawn('/bin/bash', args, { stdio: 'ignore', detached: true });
  started.push(child);
  return child.pid as number;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
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
