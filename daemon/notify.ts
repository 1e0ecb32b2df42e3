// systemd readiness and watchdog (Type=notify, WatchdogSec=). Node cannot send on a unix
// datagram socket, so the messages go through systemd's own `systemd-notify`, with
// `--pid` set to this process: as root it sends our pid as the sender's credentials, so
// systemd takes them as the main process's (NotifyAccess=main suffices) even though
// systemd-notify itself has exited by the time they are read. Outside systemd
// (NOTIFY_SOCKET unset) every call does nothing.
import { execFile } from 'node:child_process';

export function notifyAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  return typeof env.NOTIFY_SOCKET === 'string' && env.NOTIFY_SOCKET !== '';
}

export function sdNotify(...assignments: string[]): Promise<boolean> {
  if (!notifyAvailable()) return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile('systemd-notify', [`--pid=${process.pid}`, ...assignments], { timeout: 5000 }, (err) => resolve(err === null));
  });
}

/**
 * Pings the watchdog at half the interval systemd asked for (WATCHDOG_USEC), but only
 * while `healthy()` says the monitor can see: a daemon whose sensor is dead for good is
 * restarted by systemd rather than kept alive blind. Returns a stop function.
 */
export function startWatchdog(healthy: () => boolean, env: NodeJS.ProcessEnv = process.env): () => void {
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  if (!notifyAvailable(env) || !Number.isFinite(usec) || usec <= 0 || !forUs) return () => undefined;
  const timer = setInterval(() => {
    if (healthy()) void sdNotify('WATCHDOG=1');
  }, Math.max(500, usec / 2000));
  timer.unref();
  return () => clearInterval(timer);
}
