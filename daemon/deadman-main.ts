// The dead-man's switch, as its own small process (started by daemon/deadman.ts, outside the
// subject, protected like the daemon). It watches the daemon's (and its sensors') /proc state,
// cgroup and heartbeat. A monitor process that is held but alive (stopped, traced, frozen or
// moved in cgroup v2) is resumed (deadman-resume.ts) and the daemon told so on stdout, one JSON
// line each: the daemon logs it, since two writers would break the chain. Only a daemon that
// is gone (SIGKILL, the OOM killer, a harness timeout), cannot be resumed, or is hung (its
// event loop sent no heartbeat for the window, 500 ms by default) is lost: then the watchdog
// freezes the subject's group (enforce mode or --fail-closed), makes sure the daemon never
// writes again, appends a correctly chained record saying the monitor was lost and what it
// did, and, for `exec`, kills and removes the group after a grace period and ends the trial.
// A clean stop says `bye` on its stdin first; then it exits without acting.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopAll } from './actions/freeze.js';
import { findCgroupV2Mount, groupPids, removeGroup } from './cgroup.js';
import { Resumer, STUCK_MS } from './deadman-resume.js';
import { type Subject, subjectPids } from './subject.js';
import { listTrialGroups } from './trials/groups.js';
import { AuditLog } from './outputs/audit-log.js';
import { LineSplitter } from './lines.js';

export interface DeadmanConfig {
  daemonPid: number;
  /** the subject's cgroup v2 group, or null (a uid subject: nothing to freeze) */
  group: string | null;
  /** a process-tree subject (exec as a user, no cgroup): its marker; frozen with SIGSTOP */
  treeMarker?: string;
  log: string;
  /** the log's reading group (--log-group), kept when the watchdog opens it */
  logGroup?: number;
  /** freeze on loss: enforce mode or --fail-closed */
  freeze: boolean;
  /** `exec`: kill and remove the group once `graceMs` has passed after the loss */
  exec: boolean;
  graceMs: number;
  pollMs: number;
  /** the daemon counts as lost when no heartbeat came for this long (0: not checked) */
  heartbeatWindowMs: number;
  trial?: string;
  /**
   * `run --trials-under` a glob: its parent holds other services too, so instead of `group`
   * every trial group that matches (the pattern's RegExp source) is frozen on loss, those made
   * since the daemon's last scan too
   */
  trials?: { parent: string; pattern: string };
  /** `redline exec`'s supervisor (the daemon's parent): resumed like a sensor when held */
  supervisorPid?: number;
}

/** the daemon is gone: no /proc entry, or a zombie */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/** `exec`'s exit code for a tripped trial (commands/exec.ts EXIT.tripped): a lost monitor is one */
const EXIT_TRIPPED = 3;
/**
 * About this often the slower checks run: the tracer of every thread (a readdir and a read per
 * thread, ~0.5 ms for the daemon's) and the watchdog's own group and tracer. Each poll reads
 * only the daemon's and sensors' status and cgroup (~30 µs each).
 */
const DEEP_MS = 200;
/** how long a daemon that has not said a word yet may be silent (it is starting up) */
const STARTUP_MS = 10_000;

function main(): void {
  const c = JSON.parse(process.argv[2] ?? '{}') as DeadmanConfig;
  let sensorPids: number[] = [];
  let done = false;
  let lastHeard = performance.now();
  // the window counts from the daemon's first word: before it, the daemon is still starting
  // (its loop busy loading rules, programs and the weights' fingerprints on a loaded host, its
  // subject not started), and is lost only past STARTUP_MS of silence
  let heard = false;
  // where the daemon and the watchdog belong (a sensor's when it is named): a move out is undone
  const resumer = new Resumer(findCgroupV2Mount(), [process.pid, c.daemonPid, ...(c.supervisorPid ? [c.supervisorPid] : [])], c.group);
  resumer.adopt(c.daemonPid);
  resumer.adopt(process.pid);
  if (c.supervisorPid) resumer.adopt(c.supervisorPid);
  // the daemon reads these; one that is gone makes the write fail, which is the poll's to notice
  process.stdout.on('error', () => undefined);
  process.stdin.setEncoding('utf8');
  // (a daemon's line is short: one that grows past 64 KiB without a newline is dropped)
  const fromDaemon = new LineSplitter((raw) => {
    const line = raw.trim();
    if (line === 'bye') {
      done = true;
      process.exit(0);
    } else if (line.startsWith('sensor ')) {
      const pids = line.slice(7).split(' ').map(Number).filter((n) => n > 0);
      for (const pid of sensorPids) if (!pids.includes(pid)) resumer.forget(pid);
      sensorPids = pids;
      for (const pid of sensorPids) resumer.adopt(pid);
    } else if (line === 'freeze 1' || line === 'freeze 0') c.freeze = line === 'freeze 1';
  }, 65_536);
  process.stdin.on('data', (chunk: string) => {
    lastHeard = performance.now();
    heard = true;
    fromDaemon.push(chunk);
  });
  // the pipe closing without a bye: the daemon is gone, and sooner than the next poll says so
  process.stdin.on('end', () => void lost('the daemon exited without stopping (its pipe closed)'));
  const silentFor = () => performance.now() - lastHeard;
  const window = () => (heard ? c.heartbeatWindowMs : Math.max(c.heartbeatWindowMs, STARTUP_MS));
  let polls = 0;
  const deepEvery = Math.max(1, Math.round(DEEP_MS / c.pollMs));
  const timer = setInterval(() => {
    const deep = ++polls % deepEvery === 0;
    const others = c.supervisorPid ? [...sensorPids, c.supervisorPid] : sensorPids;
    const { verdicts, answers } = resumer.pass(deep ? [c.daemonPid, ...others, process.pid] : [c.daemonPid, ...others], deep);
    for (const a of answers) process.stdout.write(`${JSON.stringify(a)}\n`);
    const v = verdicts.get(c.daemonPid);
    if (v === 'gone') void lost('the daemon is gone (killed, or it died)');
    else if (v === 'stuck') void lost(`the daemon is held and could not be resumed (still stopped, traced or frozen ${STUCK_MS} ms after the watchdog tried): it sees nothing`);
    // a held daemon beats not; one just resumed gets a whole window to beat again
    else if (v === 'held' || v === 'resumed') lastHeard = performance.now();
    else if (c.heartbeatWindowMs > 0 && silentFor() > window()) {
      // once more after this turn's input is read: a watchdog that itself waited for a core
      // has the daemon's beats queued on its pipe, not missing
      setImmediate(() => {
        const ms = Math.round(silentFor());
        if (ms > window()) void lost(`the daemon stopped answering: no heartbeat for ${ms} ms (window ${window()} ms${heard ? '' : ', starting up'}); it is hung and sees nothing`);
      });
    }
  }, c.pollMs);
  // armed: the daemon starts the subject only after this line
  process.stdout.write('ready\n');

  async function lost(reason: string): Promise<void> {
    if (done) return;
    done = true;
    clearInterval(timer);
    const t0 = performance.now();
    let frozen = false;
    const tree: Subject | null = c.treeMarker ? { kind: 'tree', root: 0, marker: c.treeMarker } : null;
    if (c.freeze && c.group) {
      try {
        writeFileSync(join(c.group, 'cgroup.freeze'), '1');
        frozen = true;
      } catch {
        // the group is gone: nothing of the subject is left to freeze
      }
    } else if (c.freeze && tree) frozen = stopAll(() => subjectPids(tree)).ok;
    const frozenGroups: string[] = [];
    if (c.freeze && c.trials) {
      for (const g of listTrialGroups({ parent: c.trials.parent, pattern: new RegExp(c.trials.pattern), given: c.trials.parent })) {
        try {
          writeFileSync(join(g, 'cgroup.freeze'), '1');
          frozenGroups.push(g);
        } catch {
          // removed meanwhile
        }
      }
      frozen = frozenGroups.length > 0;
    }
    const freezeMs = Math.round((performance.now() - t0) * 1000) / 1000;
    // a stuck or hung daemon (and its sensor) must never write again: the chain goes on from here
    const stopped: number[] = [];
    for (const pid of [c.daemonPid, ...sensorPids]) {
      if (gone(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        stopped.push(pid);
      } catch {
        // gone meanwhile
      }
    }
    for (let i = 0; i < 100 && !gone(c.daemonPid); i++) await new Promise((r) => setTimeout(r, 10));
    const trial = c.trial ? { trial: c.trial } : {};
    const log = AuditLog.open(c.log, { group: c.logGroup });
    const what = c.trials && c.freeze ? (frozen ? `the ${frozenGroups.length} trial group(s) matching ${c.trials.pattern} were frozen by the watchdog` : 'no trial group was there to freeze') : null;
    const summary = `the monitor was lost: ${reason}; ${what ?? (frozen ? 'the subject was frozen by the watchdog' : c.freeze ? 'the subject could not be frozen' : 'observe mode: the subject was left running')}`;
    log.append({ kind: 'alert', rule: 'redline.monitor-lost', category: 'monitor.degraded', severity: 'critical', summary, pid: process.pid, comm: 'redline-watchdog', tags: ['daemon'], actions: [], ...trial });
    log.append({ kind: 'daemon', phase: 'lost', reason, by: 'watchdog', watchdog_pid: process.pid, daemon_pid: c.daemonPid, subject_frozen: frozen, freeze_ms: frozen ? freezeMs : undefined, killed_monitor: stopped, subject: c.group, frozen_groups: c.trials ? frozenGroups : undefined, ...trial });
    if (c.exec && c.group) {
      // the trial is over: after the grace period its processes are killed and its group removed
      await new Promise((r) => setTimeout(r, c.graceMs));
      let killed = false;
      try {
        writeFileSync(join(c.group, 'cgroup.kill'), '1');
        killed = true;
      } catch {
        for (const pid of groupPids(c.group)) {
          try {
            process.kill(pid, 'SIGKILL');
            killed = true;
          } catch {
            // gone
          }
        }
      }
      for (let i = 0; i < 100 && groupPids(c.group).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      log.append({ kind: 'daemon', phase: 'lost-cleanup', by: 'watchdog', killed, group_removed: removeGroup(c.group), ...trial });
    } else if (c.exec && tree) {
      await new Promise((r) => setTimeout(r, c.graceMs));
      const pids = subjectPids(tree);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      log.append({ kind: 'daemon', phase: 'lost-cleanup', by: 'watchdog', killed: pids.length > 0, ...trial });
    }
    // the killed daemon never writes the trial's end: without one audit could not tell a
    // finished trial from a log cut short
    if (c.exec && c.trial) log.append({ kind: 'trial', phase: 'end', trial: c.trial, exit_code: EXIT_TRIPPED, reason: 'monitor-lost', lost_reason: reason, tripped: true, frozen, ended_by: 'watchdog' });
    log.close();
    process.exit(0);
  }
}

main();
