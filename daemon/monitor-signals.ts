// Signals the subject sent to the monitor's own processes, for the last few seconds: a stop
// signal the daemon receives is the subject's tampering when the sensor saw the subject send it.

/** only the last few seconds matter: a subject signalling the monitor in a loop must not grow memory */
const KEEP_MS = 10_000;
const MAX = 1024;

export class MonitorSignals {
  private readonly seen: { time: number; sig: number; pid: number }[] = [];

  noted(sig: number, pid: number): void {
    const now = Date.now();
    while (this.seen.length > 0 && now - (this.seen[0]?.time ?? now) > KEEP_MS) this.seen.shift();
    if (this.seen.length < MAX) this.seen.push({ time: now, sig, pid });
  }

  /** did a subject process signal the monitor with `sig` around now? */
  sentRecently(sig: number, withinMs: number): boolean {
    const now = Date.now();
    return this.seen.some((s) => s.sig === sig && now - s.time <= withinMs);
  }
}
