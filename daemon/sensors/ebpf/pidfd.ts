// A signal sent through a pidfd (pidfd_send_signal) names no pid: the target is read from the
// sender's fdinfo while it still holds the fd, before the event leaves the sensor.
import { readFileSync } from 'node:fs';
import type { SignalEvent } from '../../events.js';

/** the pid behind a pidfd, read from the sender's fdinfo while it still holds the fd */
export function pidOfPidfd(pid: number, fd: number): number | null {
  try {
    const m = /^Pid:\s*(-?\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** the event's target, where its pidfd still names one */
export function resolvePidfd(ev: SignalEvent): void {
  const pid = ev.pidfd === undefined ? null : pidOfPidfd(ev.pid, ev.pidfd);
  if (pid !== null && pid > 0) {
    ev.target_pid = pid;
    ev.target_unresolved = undefined;
  }
}
