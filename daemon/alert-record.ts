// What an alert record says: the rule, the event as the rules saw it, the process and its
// target in brief. The fields are the contract's (docs/contract.md); built once per alert.
import { nowMs } from './clock.js';
import type { Match } from './engine/ruleset.js';
import { ancestorsOf, type Enriched, type ProcInfo } from './process.js';

export function procSummary(p: ProcInfo | null): Record<string, unknown> | undefined {
  if (!p) return undefined;
  return {
    pid: p.pid,
    // the pid inside its own pid namespace (a container's), when it differs and is known
    ns_pid: p.nsPid,
    key: p.key,
    ppid: p.ppid,
    uid: p.uid,
    comm: p.comm,
    args: p.args.slice(0, 64),
    subject: p.subject,
    ancestors: ancestorsOf(p).slice(0, 16).map((a) => ({ pid: a.pid, comm: a.comm })),
  };
}

export function alertRecord(m: Match, e: Enriched, mode: 'observe' | 'enforce'): { kind: 'alert' } & Record<string, unknown> {
  return {
    kind: 'alert',
    rule: m.rule.id,
    category: m.rule.category,
    severity: m.rule.severity,
    summary: m.summary,
    pid: e.proc.pid,
    comm: e.proc.comm,
    tags: m.rule.tags,
    actions: m.rule.actions,
    mode,
    suppressed: m.suppressed || undefined,
    event: e.event,
    proc: procSummary(e.proc),
    target: procSummary(e.target),
    generation: e.generation,
    live_replicas: e.liveReplicas,
    // a sensor's trouble keeps its name and loss at the top, as log readers expect of monitor alerts
    sensor: e.event.type === 'sensor_trouble' ? e.event.sensor : undefined,
    lost: e.event.type === 'sensor_trouble' ? e.event.lost : undefined,
    // a serving alert says at the top whether the listener answered the canary as the original (docs/contract.md)
    functional: e.event.type === 'probe' ? e.event.functional : undefined,
    latency_ms: Math.round((nowMs() - e.event.time) * 1000) / 1000,
  };
}
