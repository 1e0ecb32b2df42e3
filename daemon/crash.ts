// The last resort: an error nothing on the event path caught ends the daemon, but not with
// the subject running unwatched. The freeze is written to the cgroup before anything else
// is tried; the log then gets a critical alert, the freeze's result and a `crash` record.
import { freeze } from './actions/freeze.js';
import { type ActionResult, combined } from './actions/result.js';
import type { AuditLog } from './outputs/audit-log.js';
import type { Pipeline } from './pipeline.js';
import type { Subject } from './subject.js';

export interface CrashOptions {
  /**
   * The exit status: `exec` exits 3 (CONTRACT.md: tripped; the crash alert is critical),
   * `run` exits 1 (not a clean stop, not a config error).
   */
  exitCode: number;
  /** enforce mode or --fail-closed, as it is at the moment of the crash */
  freezeFirst: () => boolean;
  /** what a crash freezes: the subject, or under a --trials-under glob each trial's group */
  subjects: () => Subject[];
  pipeline: Pipeline;
  log: AuditLog;
}

/** installs the process-wide handlers; returns what removes them */
export function onCrash(o: CrashOptions): () => void {
  let crashing = false;
  const crash = (err: unknown) => {
    if (crashing) return;
    crashing = true;
    const frozen = o.freezeFirst() ? freezeAll(o.subjects()) : null;
    void lastRecords(o, err, frozen);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  return () => {
    process.off('uncaughtException', crash);
    process.off('unhandledRejection', crash);
  };
}

/** every group written at once, then one result: ok when each froze */
async function freezeAll(subjects: Subject[]): Promise<ActionResult> {
  const rs = await Promise.all(subjects.map((s) => freeze(s).catch((e: unknown): ActionResult => ({ action: 'freeze', ok: false, latency_ms: 0, error: String(e) }))));
  return combined('freeze', rs);
}

/** each step on its own: the log itself may be what failed, and stderr still says it */
function attempt(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // nothing left to tell
  }
}

async function lastRecords(o: CrashOptions, err: unknown, frozen: Promise<ActionResult> | null): Promise<never> {
  const message = err instanceof Error ? err.message : String(err);
  const stack = err instanceof Error ? (err.stack ?? message) : message;
  process.stderr.write(`redline: stopping on an internal error: ${stack}\n`);
  attempt(() => o.pipeline.daemonAlert('redline.crashed', 'monitor.degraded', 'critical', `redline stopped on an internal error: ${message}`, { error: stack.split('\n').slice(0, 8).join('\n') }));
  const r = frozen ? await frozen : null;
  const trial = o.pipeline.trial ? { trial: o.pipeline.trial } : {};
  if (r) attempt(() => o.log.append({ kind: 'action', ...r, cause: 'redline.crashed', ...trial }));
  attempt(() => o.log.append({ kind: 'daemon', phase: 'crash', error: message, subject_frozen: r?.ok ?? false, ...trial }));
  attempt(() => o.log.close());
  process.exit(o.exitCode);
}
