// What each control command does. Every command, read-only `status` included, is logged
// as an action record (`cause: "control"`); freeze, thaw and kill write theirs through the
// pipeline, as a rule's action would, and are carried out in observe mode too (an operator
// asked for them).
import type { ActionResult } from '../actions/result.js';
import { metaProblem } from '../meta.js';
import type { ControlReply, ControlRequest } from './server.js';

export interface Controlled {
  status(): Record<string, unknown>;
  freeze(cause: string): Promise<ActionResult>;
  thaw(cause: string): Promise<ActionResult>;
  kill(cause: string): Promise<ActionResult>;
  reload(): { ok: boolean; rules?: number; errors?: string[] };
  setMode(mode: 'observe' | 'enforce'): 'observe' | 'enforce';
  startTrial(name: string, meta?: Record<string, string>): string | null;
  endTrial(): { trial: string; alerts: number; tripped: boolean } | string;
  /** run --trials-under: metadata for a sandbox's trial (one not made yet gets it in its start record) */
  trialMeta(group: string, meta: Record<string, string>): { trial: string | null } | string;
  logAction(fields: Record<string, unknown>): void;
}

const TRIAL_NAME = /^[A-Za-z0-9._:-]{1,128}$/;

function fromAction(r: ActionResult): ControlReply {
  return r.ok ? { ok: true, action: r.action, latency_ms: r.latency_ms, detail: r.detail } : { ok: false, error: r.error ?? `${r.action} failed`, action: r.action, latency_ms: r.latency_ms };
}

/** `cause`: what the action records say asked for it ("control"; "dashboard:NAME" for an operator token's page) */
export function controlHandler(m: Controlled, cause = 'control'): (req: ControlRequest) => Promise<ControlReply> {
  const CAUSE = cause;
  const logged = (cmd: string, t0: number, reply: ControlReply, extra: Record<string, unknown> = {}): ControlReply => {
    m.logAction({ kind: 'action', action: cmd, ok: reply.ok, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000, cause: CAUSE, ...extra, ...(reply.ok ? {} : { error: reply.error }) });
    return reply;
  };
  return async (req) => {
    const t0 = performance.now();
    switch (req.cmd) {
      case 'status':
        return logged('status', t0, { ok: true, ...m.status() });
      case 'freeze':
        return fromAction(await m.freeze(CAUSE));
      case 'thaw':
        return fromAction(await m.thaw(CAUSE));
      case 'kill':
        return fromAction(await m.kill(CAUSE));
      case 'reload': {
        const r = m.reload();
        return logged('reload', t0, r.ok ? { ok: true, rules: r.rules } : { ok: false, error: `the rules did not load; the old rules stay: ${(r.errors ?? []).join('; ')}`, errors: r.errors });
      }
      case 'mode': {
        const mode = req.mode;
        if (mode !== 'observe' && mode !== 'enforce') return logged('mode', t0, { ok: false, error: 'mode is "observe" or "enforce"' });
        const previous = m.setMode(mode);
        return logged('mode', t0, { ok: true, mode, previous }, { mode, previous });
      }
      case 'trial': {
        if (req.action === 'start') {
          const name = typeof req.name === 'string' ? req.name : '';
          if (!TRIAL_NAME.test(name)) return logged('trial-start', t0, { ok: false, error: 'a trial name is 1–128 of A-Z a-z 0-9 . _ : -' });
          const problem = req.meta === undefined ? null : metaProblem(req.meta);
          if (problem) return logged('trial-start', t0, { ok: false, error: problem });
          const refused = m.startTrial(name, req.meta as Record<string, string> | undefined);
          return logged('trial-start', t0, refused ? { ok: false, error: refused } : { ok: true, trial: name }, { trial_name: name });
        }
        if (req.action === 'end') {
          const r = m.endTrial();
          return logged('trial-end', t0, typeof r === 'string' ? { ok: false, error: r } : { ok: true, ...r });
        }
        if (req.action === 'meta') {
          const group = typeof req.group === 'string' ? req.group : '';
          const meta = req.meta;
          if (!TRIAL_NAME.test(group)) return logged('trial-meta', t0, { ok: false, error: 'a group name is 1–128 of A-Z a-z 0-9 . _ : -' });
          const problem = metaProblem(meta);
          if (problem) return logged('trial-meta', t0, { ok: false, error: problem });
          const r = m.trialMeta(group, meta as Record<string, string>);
          return logged('trial-meta', t0, typeof r === 'string' ? { ok: false, error: r } : { ok: true, ...r }, { group });
        }
        return logged('trial', t0, { ok: false, error: 'trial takes "start" (with a name), "end" or "meta" (with a group and its metadata)' });
      }
      default:
        return logged(String(req.cmd).slice(0, 64), t0, { ok: false, error: `unknown command "${String(req.cmd).slice(0, 64)}" (status, freeze, thaw, kill, reload, mode, trial)` });
    }
  };
}
