export type ActionName = 'freeze' | 'thaw' | 'kill' | 'snapshot' | 'stop';

/** actions never throw; they report */
export interface ActionResult {
  action: ActionName;
  ok: boolean;
  latency_ms: number;
  method?: string;
  error?: string;
  skipped?: boolean;
  detail?: Record<string, unknown>;
}

/** one action over several groups as one result: ok when each was, the slowest's time, every error */
export function combined(action: ActionName, rs: ActionResult[], detail?: Record<string, unknown>): ActionResult {
  const failed = rs.filter((r) => !r.ok);
  return { action, ok: failed.length === 0, latency_ms: Math.max(0, ...rs.map((r) => r.latency_ms)), method: rs[0]?.method, detail, error: failed.length > 0 ? failed.map((r) => r.error).join('; ') : undefined };
}

export function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

const SLEEP = new Int32Array(new SharedArrayBuffer(4));

/**
 * Polls `done` until it is true or `timeoutMs` passes. The first milliseconds are a tight
 * synchronous loop: a freeze usually completes in 3–4 ms and the event loop has nothing
 * more urgent to do than finish it.
 */
export async function waitUntil(done: () => boolean, timeoutMs: number, syncMs = 25): Promise<boolean> {
  const t0 = performance.now();
  while (performance.now() - t0 < Math.min(syncMs, timeoutMs)) {
    if (done()) return true;
    Atomics.wait(SLEEP, 0, 0, 0.1);
  }
  while (performance.now() - t0 < timeoutMs) {
    if (done()) return true;
    await new Promise((r) => setTimeout(r, 2));
  }
  return done();
}
