// The watchdog (dead-man's switch) and the crash path: if this daemon dies, is stopped or
// crashes, the subject does not run on unwatched (frozen in enforce mode or with --fail-closed).
import { resolve } from 'node:path';
import { findCgroupV2Mount } from '../cgroup.js';
import { groupId } from '../config/group.js';
import { onCrash } from '../crash.js';
import { DEADMAN_BEAT_MS, DEADMAN_GRACE_MS, DEADMAN_POLL_MS, Deadman } from '../deadman.js';
import type { Subject } from '../subject.js';
import { supervisorPid } from '../supervisor.js';
import type { Parts } from './parts.js';

export function spawnDeadman(p: Parts): Promise<Deadman> {
  const { o } = p;
  const s = o.subject;
  // test-only: a watchdog that cannot start (tests/integration/guard.test.ts)
  if (process.env.REDLINE_TEST_FAULT === 'watchdog') return Promise.reject(new Error('fault injected by REDLINE_TEST_FAULT'));
  return Deadman.start({
    daemonPid: process.pid,
    // a glob's parent holds more than the trials (system.slice): its watchdog freezes the matching groups instead (`trials`)
    group: s.kind === 'cgroup2' && !o.trials?.pattern ? s.path : null,
    ...(s.kind === 'tree' ? { treeMarker: s.marker } : {}),
    log: resolve(o.logPath),
    logGroup: o.config.logGroup === undefined ? undefined : (groupId(o.config.logGroup) ?? undefined),
    freeze: o.config.mode === 'enforce' || o.config.failClosed,
    exec: o.config.command === 'exec',
    graceMs: DEADMAN_GRACE_MS,
    pollMs: DEADMAN_POLL_MS,
    heartbeatWindowMs: o.config.heartbeatWindowMs,
    trial: o.trial,
    ...(supervisorPid() ? { supervisorPid: supervisorPid() as number } : {}),
    ...(o.trials?.pattern ? { trials: { parent: o.trials.parent, pattern: o.trials.pattern.source } } : {}),
  });
}

/** the watchdog started (or could not: the daemon still watches, and the log says what is missing) */
export function armDeadman(p: Parts, d: Deadman | Error): void {
  if (d instanceof Error) {
    // the daemon still watches; only its own death would go unanswered, and the log says so
    p.pipeline.daemonAlert('redline.watchdog-failed', 'monitor.degraded', 'high', `the watchdog could not start: ${d.message}; if this daemon dies, nothing freezes the subject`);
    return;
  }
  p.deadman = d;
  d.sensors(p.sensor.ownPids());
  // the watchdog freed a held monitor (it never writes the log while this daemon lives): an attack on the monitor
  d.on('resumed', (r) => {
    p.pipeline.daemonAlert('redline.monitor-resumed', 'monitor.tamper', 'critical', r.summary, r.details);
    if (p.pipeline.mode === 'enforce') void p.pipeline.operatorFreeze(r.cause).catch(() => undefined);
  });
  if (d.pid) p.guard?.monitor([d.pid]);
  // protected like the daemon: a subject signalling it is tamper
  if (d.pid) p.table.setMonitorPids([d.pid]);
  p.log.append({ kind: 'daemon', phase: 'watchdog', watchdog_pid: d.pid, poll_ms: DEADMAN_POLL_MS, heartbeat_ms: DEADMAN_BEAT_MS, heartbeat_window_ms: p.o.config.heartbeatWindowMs, grace_ms: p.o.config.command === 'exec' ? DEADMAN_GRACE_MS : undefined });
}

/**
 * What a freeze for the monitor's own failure takes: the subject, which under
 * --trials-under is the parent, so its sandboxes (and any made later) freeze together;
 * under a glob the parent holds other services, so each trial's group instead.
 */
function freezeTargets(p: Parts): Subject[] {
  if (!p.trials || !p.o.trials?.pattern) return [p.o.subject];
  return p.trials.list().map((t) => ({ kind: 'cgroup2', path: t.group, mount: findCgroupV2Mount() ?? '/sys/fs/cgroup' }));
}

/** an error nothing else caught: the subject frozen first (enforce or --fail-closed), then the last records; returns the unhook */
export function catchCrashes(p: Parts): () => void {
  return onCrash({
    // the crash path freezes and logs by itself: the watchdog is told it need not
    freezeFirst: () => {
      p.deadman?.bye();
      return p.pipeline.mode === 'enforce' || p.o.config.failClosed;
    },
    exitCode: p.o.config.command === 'exec' ? 3 : 1,
    subjects: () => freezeTargets(p),
    pipeline: p.pipeline,
    log: p.log,
  });
}
