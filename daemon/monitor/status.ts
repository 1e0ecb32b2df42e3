// What `redline status` prints: the daemon, its subject and trials, each sensor's health,
// the counts, the chain's head, the websocket's clients.
import { VERSION } from '../version.js';
import { describeSubject } from '../subject.js';
import type { Parts } from './parts.js';

export function status(p: Parts): Record<string, unknown> {
  const sensors = [p.sensor.health(), p.tracker.health(), p.ports.health(), ...(p.watcher ? [p.watcher.health()] : []), ...(p.gpu ? [p.gpu.health()] : [])];
  return {
    version: VERSION,
    daemon_pid: process.pid,
    uptime_s: Math.round((Date.now() - p.startedAt) / 1000),
    subject: describeSubject(p.o.subject),
    mode: p.pipeline.mode,
    trial: p.pipeline.trial ?? null,
    frozen: p.pipeline.frozen,
    trials: p.trials?.list().map((t) => ({ id: t.id, cgroup: t.group, frozen: t.actions.frozen, alerts: t.alerts, meta: t.meta })),
    sensors,
    rules: p.pipeline.ruleset.rules.length,
    counts: { events: p.pipeline.counts.events, alerts: p.pipeline.counts.alerts, by_severity: p.pipeline.counts.bySeverity },
    chain: p.log.head(),
    log: p.log.path,
    websocket: p.stream ? { clients: p.stream.clientCount, ...p.stream.counts } : null,
  };
}
