// Carries out the actions the rules and the operator ask for: freeze first (once, however
// many ask at the same moment), then the snapshot of the evidence, kill and thaw. Every
// result is a record; in observe mode a rule's action is recorded as skipped.
import { nowMs } from '../clock.js';
import type { RuleAction } from '../engine/schema.js';
import type { Subject } from '../subject.js';
import { freeze, thaw } from './freeze.js';
import { kill } from './kill.js';
import type { ActionName, ActionResult } from './result.js';
import { type Snapshot, snapshot } from './snapshot.js';

export interface RunnerOptions {
  subject: Subject;
  /** observe or enforce, as it is now (the control socket can switch it) */
  mode: () => 'observe' | 'enforce';
  /** the daemon runs with --fail-closed: the `fail-closed` action freezes */
  failClosed: boolean;
  write: (fields: { kind: string } & Record<string, unknown>) => unknown;
  /** the evidence taken at a freeze (tests pass one that fails) */
  snapshot?: (s: Subject) => Snapshot;
  /** the subject is frozen (the evidence is in the log by now) */
  frozen: (r: ActionResult) => void;
  /** an error that is not the action's own result */
  report: (where: string, err: unknown) => void;
  /**
   * Live processes that are the subject's business but outside its group: subject processes
   * that moved out, replicas a host service started for it. A freeze cannot reach them; they
   * get SIGSTOP (never SIGTERM: that is the agent's cue).
   */
  strays?: () => number[];
}

export class ActionRunner {
  frozen = false;
  private freezing: Promise<ActionResult> | null = null;
  /** strays this runner stopped (a thaw lets them go on) */
  private readonly stopped = new Set<number>();

  constructor(private readonly o: RunnerOptions) {}

  /** a rule's action: carried out, or in observe mode recorded as skipped; null when it does not apply */
  async act(ruleAction: RuleAction, cause: string, eventTime?: number): Promise<ActionResult | null> {
    if (ruleAction === 'fail-closed' && !this.o.failClosed) return null;
    const action = ruleAction === 'fail-closed' ? 'freeze' : ruleAction;
    if (this.o.mode() === 'observe') return this.skip(ruleAction, cause);
    const fr = await this.freezeOnce(cause, eventTime);
    this.stopStrays(cause);
    if (action === 'freeze') return fr;
    return this.runAction('kill', () => kill(this.o.subject), cause);
  }

  /** observe mode: the action is recorded as skipped (a `fail-closed` without --fail-closed is not an action at all) */
  skip(ruleAction: RuleAction, cause: string): ActionResult | null {
    if (ruleAction === 'fail-closed' && !this.o.failClosed) return null;
    const r: ActionResult = { action: ruleAction === 'fail-closed' ? 'freeze' : ruleAction, ok: false, skipped: true, latency_ms: 0 };
    this.o.write({ kind: 'action', ...r, cause, reason: 'observe mode' });
    return r;
  }

  /** one freeze however many ask for it at once; the freeze is written before this returns */
  freezeOnce(cause: string, eventTime?: number): Promise<ActionResult> {
    if (this.frozen) return Promise.resolve({ action: 'freeze', ok: true, latency_ms: 0, detail: { already: true } });
    this.freezing ??= this.freezeAndSnapshot(cause, eventTime).finally(() => {
      // whatever threw on the way, the next freeze is not wedged behind this one
      this.freezing = null;
    });
    return this.freezing;
  }

  private async freezeAndSnapshot(cause: string, eventTime?: number): Promise<ActionResult> {
    const r = await this.runAction('freeze', () => freeze(this.o.subject), cause, eventTime);
    if (!r.ok) return r;
    this.frozen = true;
    try {
      const snap = (this.o.snapshot ?? snapshot)(this.o.subject);
      this.o.write({ kind: 'snapshot', cause, processes: snap.processes, latency_ms: snap.latency_ms });
    } catch (err) {
      // the freeze holds; only the evidence is missing, and the log says why
      this.o.report('snapshot', err);
    }
    this.o.frozen(r);
    return r;
  }

  /** SIGSTOP for the strays not stopped yet; one action record for those it stopped */
  stopStrays(cause: string): void {
    const t0 = performance.now();
    const stopped: number[] = [];
    const failed: string[] = [];
    for (const pid of this.o.strays?.() ?? []) {
      if (this.stopped.has(pid) || pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGSTOP');
        this.stopped.add(pid);
        stopped.push(pid);
      } catch (err) {
        // gone since: nothing left to stop
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') failed.push(`${pid}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    if (stopped.length === 0 && failed.length === 0) return;
    const r: ActionResult = { action: 'stop', ok: failed.length === 0, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000, method: 'sigstop', detail: { pids: stopped }, error: failed.length > 0 ? failed.join('; ') : undefined };
    this.o.write({ kind: 'action', ...r, cause });
  }

  async runAction(name: ActionName, run: () => Promise<ActionResult>, cause: string, eventTime?: number): Promise<ActionResult> {
    const r = await run();
    // for a trip: from the kernel event that caused it to the action done
    const since = eventTime === undefined ? undefined : Math.round((nowMs() - eventTime) * 1000) / 1000;
    this.o.write({ kind: 'action', ...r, cause, since_event_ms: since });
    if (name === 'thaw' && r.ok) this.frozen = false;
    return r;
  }

  async operatorKill(cause: string): Promise<ActionResult> {
    await this.freezeOnce(cause);
    return this.runAction('kill', () => kill(this.o.subject), cause);
  }

  async operatorFreeze(cause: string): Promise<ActionResult> {
    if (this.frozen) {
      const r: ActionResult = { action: 'freeze', ok: true, latency_ms: 0, detail: { already: true } };
      this.o.write({ kind: 'action', ...r, cause });
      return r;
    }
    return this.freezeOnce(cause);
  }

  operatorThaw(cause: string): Promise<ActionResult> {
    // the strays go on with the group
    for (const pid of this.stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    this.stopped.clear();
    return this.runAction('thaw', () => thaw(this.o.subject), cause);
  }
}
