// `redline exec` as the harness sees it. The process the harness started is this small
// supervisor; the monitor is its child (the same command line, SUPERVISOR_ENV naming this
// pid). Whatever happens to the monitor (killed by its own watchdog because its event loop
// hung, by the OOM killer, by a subject where nothing refused the kill) the harness gets an
// exit code from the contract, never death by a signal: the child's own code, or 3 (a lost
// monitor counts as tripped) once the trial's end record is written. The watchdog writes it;
// where the watchdog is gone too, this process does, after freezing the subject in enforce
// mode (or with --fail-closed) and killing it. SIGINT, SIGTERM and SIGHUP are passed on to the
// monitor, which ends the trial as an operator's stop. It loads nothing heavy: the monitor
// starts as fast as before, one small node process later.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SUPERVISOR_ENV = 'REDLINE_EXEC_SUPERVISOR';

/** what the monitor tells its supervisor once its trial is set up (the IPC channel) */
export interface SupervisorNote {
  log: string;
  trial: string;
  watchdog: number | null;
  /** the subject's cgroup v2 group, or null (a process tree) */
  group: string | null;
  /** freeze the subject if the monitor is lost: enforce mode or --fail-closed */
  freeze: boolean;
}

/** the exit code of a tripped trial, and of a lost monitor (commands/exec.ts EXIT.tripped) */
const EXIT_TRIPPED = 3;
/** how long the watchdog may take to end the trial once the monitor died (its grace is 5 s) */
const WATCHDOG_WAIT_MS = 30_000;
/** how much of the log's end is read to find the trial's end record */
const TAIL_BYTES = 256 * 1024;

let supervisor: number | null | undefined;

/**
 * In the monitor: the pid of the supervisor that started it as its child, else null. Read
 * once; the variable is then dropped, so the subject never inherits it.
 */
export function supervisorPid(): number | null {
  if (supervisor === undefined) {
    supervisor = process.env[SUPERVISOR_ENV] === String(process.ppid) ? process.ppid : null;
    delete process.env[SUPERVISOR_ENV];
  }
  return supervisor;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function note(m: unknown): SupervisorNote | null {
  if (!m || typeof m !== 'object') return null;
  const n = m as Partial<SupervisorNote>;
  if (typeof n.log !== 'string' || typeof n.trial !== 'string') return null;
  return { log: n.log, trial: n.trial, watchdog: typeof n.watchdog === 'number' ? n.watchdog : null, group: typeof n.group === 'string' ? n.group : null, freeze: n.freeze === true };
}

/** the log's last records (a torn last line is skipped) */
function tailRecords(path: string): Record<string, unknown>[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, TAIL_BYTES);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const out: Record<string, unknown>[] = [];
    for (const line of buf.toString('utf8').split('\n')) {
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // the partial first line of the window, or a torn last one
      }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

const hasEnd = (n: SupervisorNote) => tailRecords(n.log).some((r) => r.kind === 'trial' && r.phase === 'end' && r.trial === n.trial);

/**
 * The monitor and its watchdog are both gone and the trial has no end: the last one standing
 * freezes (if asked) and kills the subject, and says so in the log, chained on from its head.
 */
async function endAlone(n: SupervisorNote, why: string): Promise<void> {
  let frozen = false;
  let killed = false;
  if (n.group && existsSync(n.group)) {
    try {
      if (n.freeze) {
        writeFileSync(join(n.group, 'cgroup.freeze'), '1');
        frozen = true;
      }
      writeFileSync(join(n.group, 'cgroup.kill'), '1');
      killed = true;
    } catch {
      // the group went meanwhile: nothing of the subject is left
    }
  }
  const { AuditLog } = await import('./outputs/audit-log.js');
  const { groupPids, removeGroup } = await import('./cgroup.js');
  if (n.group && killed) {
    for (let i = 0; i < 100 && groupPids(n.group).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    removeGroup(n.group);
  }
  const log = AuditLog.open(n.log);
  const summary = `the monitor was lost: ${why}, and its watchdog is gone too; ${killed ? `the subject was ${frozen ? 'frozen and ' : ''}killed by redline exec's supervisor` : 'no subject was left to stop'}`;
  log.append({ kind: 'alert', rule: 'redline.monitor-lost', category: 'monitor.degraded', severity: 'critical', summary, pid: process.pid, comm: 'redline-exec', tags: ['daemon'], actions: [], trial: n.trial });
  log.append({ kind: 'trial', phase: 'end', trial: n.trial, exit_code: EXIT_TRIPPED, reason: 'monitor-lost', lost_reason: why, tripped: true, frozen, ended_by: 'supervisor' });
  log.close();
}

export async function superviseExec(): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [SUPERVISOR_ENV]: String(process.pid) },
  });
  let told: SupervisorNote | null = null;
  child.on('message', (m) => {
    told = note(m) ?? told;
  });
  // the harness's stop is the monitor's to carry out (it ends the trial as an operator's stop)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      try {
        child.kill(sig);
      } catch {
        // gone: its exit is on its way
      }
    });
  }
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => {
    child.on('exit', (c, s) => res([c, s]));
    child.on('error', (err) => {
      process.stderr.write(`redline: cannot start the monitor: ${err.message}\n`);
      res([1, null]);
    });
  });
  if (code !== null) return code;
  const why = `the monitor (pid ${child.pid}) died by ${signal}`;
  process.stderr.write(`redline: ${why}; the trial counts as tripped (exit 3)\n`);
  const n = told as SupervisorNote | null;
  if (n) {
    // the watchdog ends the trial: freezes, waits its grace, kills, writes the end record
    const t0 = Date.now();
    while (n.watchdog !== null && alive(n.watchdog) && !hasEnd(n) && Date.now() - t0 < WATCHDOG_WAIT_MS) await new Promise((r) => setTimeout(r, 50));
    if (!hasEnd(n) && (n.watchdog === null || !alive(n.watchdog))) await endAlone(n, why);
  }
  return EXIT_TRIPPED;
}

/** in the monitor: tell the supervisor where the trial's log is and who its watchdog is */
export function tellSupervisor(n: SupervisorNote): void {
  if (process.send && process.connected) process.send(n);
}

/** in the monitor: the supervisor is gone (the harness killed `redline exec`): end the trial */
export function onSupervisorGone(cb: () => void): void {
  if (!process.send) return;
  process.channel?.unref();
  process.on('disconnect', cb);
}
