// `redline exec -- CMD`: one trial. CMD starts already inside a fresh cgroup (as a user
// without a delegated cgroup: as a marked process tree, commands/placement.ts), monitoring runs
// until none of its processes is left, then the trial's end record is written.
import { execFileSync, spawn } from 'node:child_process';
import { statSync, watch } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isPopulated, removeGroup } from '../cgroup.js';
import { readStat } from '../sensors/proc/read.js';
import type { ConfigFlags } from '../config/load.js';
import { snapshot } from '../actions/snapshot.js';
import type { Monitor } from '../monitor.js';
import type { AlertInfo } from '../pipeline.js';
import { type Subject, SUBJECT_ENV, subjectPids } from '../subject.js';
import { onSupervisorGone, supervisorPid, tellSupervisor } from '../supervisor.js';
import { placeSubject } from './placement.js';
import { collectHostFacts } from '../host-facts.js';
import { seccompEntry } from '../guard/index.js';
import { parseMetaPairs } from '../meta.js';
import { checkWatchable, newTrialId, setup, startMonitor, UsageError } from './setup.js';

export interface ExecResult {
  code: number;
  trial: string;
  log: string;
}

export const EXIT = { ok: 0, tripped: 3, usage: 2 } as const;

// joins the group first, then becomes CMD: there is no moment when CMD runs outside it
const ENTER = 'echo $$ > "$0/cgroup.procs" || exit 125; exec "$@"';

/** every process of the monitor the subject must not signal, trace or starve: the daemon, its supervisor, sensors, watchdog and guard */
function monitorPids(m: Monitor): number[] {
  const sup = supervisorPid();
  return [process.pid, ...(sup ? [sup] : []), ...m.sensor.ownPids(), ...(m.deadman?.pid ? [m.deadman.pid] : []), ...(m.guard?.ownPids() ?? [])];
}

/**
 * Enforce mode also refuses the subject's kills of --protect-pid processes and reboots — where
 * the refusal is seen (the loader reports it). The poll sensor cannot see a refused call, and a
 * refusal no record names is not made: with it, only the monitor is protected by the filter.
 */
function othersRefused(config: { mode: string; protectPids: readonly number[] }, m: Monitor): string[] {
  if (config.mode !== 'enforce' || m.sensor.name === 'poll') return [];
  return ['-p', config.protectPids.join(',') || '0', '-e'];
}

function waitEmpty(group: string, childExited: Promise<unknown>): Promise<void> {
  return new Promise((done) => {
    let watcher: ReturnType<typeof watch> | null = null;
    let timer: NodeJS.Timeout | null = null;
    const check = () => {
      if (isPopulated(group)) return;
      watcher?.close();
      if (timer) clearInterval(timer);
      done();
    };
    void childExited.then(() => {
      try {
        // cgroup.events changes when the group empties; polling covers missed notifications
        watcher = watch(join(group, 'cgroup.events'), check);
      } catch {
        watcher = null;
      }
      timer = setInterval(check, 100);
      check();
    });
  });
}

/** where the command is started to work: this folder, and the folders its arguments name */
function workFoldersOf(argv: string[]): string[] {
  const out = [process.cwd()];
  for (const a of argv) {
    if (!a.includes('/')) continue;
    const path = resolve(a);
    try {
      out.push(statSync(path).isDirectory() ? path : dirname(path));
    } catch {
      out.push(dirname(path));
    }
  }
  return out;
}

/** a process-tree subject: until none of its processes is left (read from /proc) */
async function waitGone(subject: Subject): Promise<void> {
  // (a zombie is gone already, only not yet reaped)
  while (subjectPids(subject).some((pid) => readStat(pid)?.state !== 'Z')) await new Promise((r) => setTimeout(r, 100));
}

/** setpriv execs in place (no extra process), as the user with its own groups */
function dropPrivileges(user: string): string[] {
  let uid: string;
  let gid: string;
  try {
    uid = execFileSync('id', ['-u', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    gid = execFileSync('id', ['-g', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // a bare uid with no account (a throwaway uid for one trial) runs as that uid and gid
    if (!/^\d+$/.test(user)) throw new UsageError(`--user ${user}: no such user`);
    uid = user;
    gid = user;
  }
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--'];
}

/**
 * The command has exited and its group still holds processes (a server it left running):
 * a record names them, and each goes to the rules as a `survivor` event (rules/process.yaml:
 * medium, high for a replica). The trial goes on until the group is empty.
 */
function reportSurvivors(m: Monitor, subject: Subject, trial: string, agentPid: number): void {
  // a zombie is gone already, only not yet reaped
  const left = snapshot(subject).processes.filter((p) => p.state !== 'Z');
  if (left.length === 0) return;
  m.log.append({ kind: 'trial', phase: 'survivors', trial, agent_pid: agentPid, processes: left });
  for (const p of left.slice(0, MAX_SURVIVOR_EVENTS)) m.pipeline.ingest({ type: 'survivor', time: Date.now(), pid: p.pid, comm: p.comm, agent_pid: agentPid, survivors: left.length });
}

/** how long the trial's start waits for the host's facts (they follow in a record of their own if later) */
const HOST_FACTS_WAIT_MS = 1000;

/** survivors judged one by one; the record lists them all */
const MAX_SURVIVOR_EVENTS = 64;

export interface ExecHooks {
  trial?: string;
  /** --meta KEY=VALUE, repeatable: the trial's metadata, in its start record */
  meta?: string[];
  quiet?: boolean;
  /** each alert as it is written (the demo prints them live) */
  onAlert?: (a: AlertInfo) => void;
}

export async function execCommand(argv: string[], flags: ConfigFlags & ExecHooks): Promise<ExecResult> {
  if (argv.length === 0) throw new UsageError('exec needs a command: redline exec [options] -- CMD [ARGS…]');
  const { config, ruleset, ruleFiles, signing, sensor } = setup('exec', flags);
  const cmd = config.user ? [...dropPrivileges(config.user), ...argv] : argv;
  const trial = flags.trial ?? newTrialId();
  const meta = flags.meta && flags.meta.length > 0 ? parseMetaPairs(flags.meta) : null;
  if (typeof meta === 'string') throw new UsageError(`--meta: ${meta}`);
  const logPath = resolve(config.log ?? `redline-${trial}.ndjson`);
  checkWatchable(config, logPath);
  // the host's facts are gathered while the monitor starts, never in the subject's way
  const facts = collectHostFacts();
  const placed = placeSubject(trial);
  if (typeof placed === 'string') throw new UsageError(placed);
  const { subject, group } = placed;
  // a process tree is watched by the poll alone: the kernel filters on a cgroup or a uid
  const chosen = subject.kind === 'tree' && sensor.kind === 'ebpf' ? { kind: 'poll' as const, why: 'the subject is a process tree (no cgroup)' } : sensor;
  let monitor: Monitor | null = null;
  let ended = false;
  try {
    monitor = await startMonitor({ config, subject, logPath, ruleset, ruleFiles, trial, sensor: chosen, workFolders: workFoldersOf(argv), ...(signing ? { signing } : {}) });
    const m = monitor;
    const say = (s: string) => {
      if (!flags.quiet) process.stderr.write(`redline: ${s}\n`);
    };
    m.pipeline.on('alert', (a: { severity: string; category: string; summary: string }) => say(`[${a.severity}] ${a.category}: ${a.summary}`));
    m.pipeline.on('frozen', (r: { latency_ms: number }) => say(`subject frozen in ${r.latency_ms} ms`));
    if (flags.onAlert) m.pipeline.on('alert', flags.onAlert);

    tellSupervisor({ log: logPath, trial, watchdog: m.deadman?.pid ?? null, group, freeze: config.mode === 'enforce' || config.failClosed });
    const host = await Promise.race([facts, new Promise<null>((r) => setTimeout(() => r(null), HOST_FACTS_WAIT_MS))]);
    // the subject starts under a seccomp filter that refuses its signals and ptrace aimed at the monitor (guard/enter)
    const enter = group === null ? null : seccompEntry();
    m.log.append({
      kind: 'trial', phase: 'start', trial, command: argv, cgroup: group, mode: config.mode, after_trip: config.afterTrip, meta: meta ?? undefined,
      sensor: m.sensor.name, placement: placed.how, placement_why: placed.why, host: host ?? 'pending',
      ...m.guardStatus, seccomp: enter !== null,
    });
    // (late: their own record, once they come)
    if (host === null) {
      void facts.then((h) => {
        try {
          if (!ended) m.log.append({ kind: 'daemon', phase: 'host', trial, host: h });
        } catch {
          // the log closed meanwhile: the trial's start said they were pending
        }
      });
    }
    // the handlers first: a subject that signals the daemon at once must find them in place
    let stopping = false;
    m.onSignals((sig) => {
      if (stopping) return;
      stopping = true;
      say(`${sig} received: killing the subject and ending the trial`);
      void m.pipeline.operatorKill(`operator ${sig}`);
    });
    // the harness killed `redline exec` (its supervisor) outright: its stop, as a signal would be
    onSupervisorGone(() => {
      if (stopping) return;
      stopping = true;
      say('redline exec (the supervisor) is gone: killing the subject and ending the trial');
      void m.pipeline.operatorKill('operator: the supervisor is gone');
    });
    const child =
      group === null
        ? spawn(cmd[0] as string, cmd.slice(1), { stdio: 'inherit', detached: true, env: { ...process.env, [SUBJECT_ENV]: trial } })
        : enter
          ? spawn(enter, [group, '-m', monitorPids(m).join(','), ...othersRefused(config, m), '--', ...cmd], { stdio: 'inherit', detached: true })
          : spawn('/bin/sh', ['-c', ENTER, group, ...cmd], { stdio: 'inherit', detached: true });
    if (subject.kind === 'tree') subject.root = child.pid ?? 0;
    // test-only: an event loop that hangs once the subject runs (tests/integration/exec-supervisor.test.ts)
    if (process.env.REDLINE_TEST_FAULT === 'hang') setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000), 500);
    // the subject started at the daemon's own priority; from here the monitor goes first
    m.prioritize();
    const childExited = new Promise<number | null>((res) => {
      child.on('exit', (code) => res(code));
      child.on('error', (err) => {
        say(`cannot start ${argv[0]}: ${err.message}`);
        res(null);
      });
    });

    m.pipeline.on('frozen', () => {
      if (stopping) return;
      if (config.afterTrip === 'kill') void m.pipeline.act('kill', 'after-trip kill');
      else say('holding the subject frozen (after-trip hold): send SIGINT/SIGTERM to redline to kill it and end the trial');
    });

    let timedOut = false;
    const limit =
      config.timeoutMs === undefined
        ? null
        : setTimeout(() => {
            if (stopping) return;
            stopping = true;
            timedOut = true;
            say(`--timeout ${config.timeoutMs} ms reached: freezing the subject, logging what still runs, killing it`);
            m.log.append({ kind: 'trial', phase: 'timeout', trial, after_ms: config.timeoutMs, processes: snapshot(subject).processes });
            // frozen first in either mode (the snapshot at the freeze names the survivors), then killed
            void m.pipeline.operatorKill('timeout');
          }, config.timeoutMs);

    const exitCode = await childExited;
    // (a frozen subject's processes are the trip's evidence already, not survivors)
    if (!stopping && !m.pipeline.frozen) reportSurvivors(m, subject, trial, child.pid ?? 0);
    if (group === null) await waitGone(subject);
    else await waitEmpty(group, Promise.resolve());
    if (limit) clearTimeout(limit);
    await m.settle();
    const code = m.pipeline.tripped() ? EXIT.tripped : EXIT.ok;
    m.log.append({
      kind: 'trial',
      phase: 'end',
      trial,
      exit_code: code,
      subject_exit: exitCode,
      // why the trial ended: its group emptied, the --timeout, or an operator's signal
      reason: timedOut ? 'timeout' : stopping ? 'operator' : 'finished',
      tripped: m.pipeline.tripped(),
      frozen: m.pipeline.frozen,
      alerts: m.pipeline.counts.alerts,
      by_severity: m.pipeline.counts.bySeverity,
      // events a sensor lost: what the subject did then was not seen, and the trial says so
      lost_events: m.pipeline.counts.lost,
      suppressed_pending: m.pipeline.ruleset.pendingSuppressed() || undefined,
    });
    ended = true;
    await m.stop('trial ended');
    monitor = null;
    return { code, trial, log: logPath };
  } finally {
    if (monitor) await monitor.stop('exec failed').catch(() => undefined);
    if (group !== null) removeGroup(group);
  }
}
