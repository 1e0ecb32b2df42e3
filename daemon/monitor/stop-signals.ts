// SIGTERM/SIGINT from a subject process is tampering (the rule raises it); from anyone else it
// stops the daemon. Node does not say who sent a signal, so the sensor is asked: the subject
// (it saw the subject send it), nobody the subject controls (it saw everything around it and
// not that), or unknown (it was blind then; the poll sensor always is).
import { PollSensor } from '../sensors/poll/index.js';
import type { Parts } from './parts.js';

const SIGNUM: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
// how long to wait for the sensor to report who sent us a signal
const SENDER_GRACE_MS = 300;
/** a sensor blind this long before a stop signal (or any time after it) cannot vouch for its sender */
const SENDER_BLIND_MS = 1000;

export class StopSignals {
  /** signal decisions still waiting for the sensor to name the sender */
  private readonly pending = new Set<Promise<void>>();
  private readonly unhook: (() => void)[] = [];

  constructor(
    private readonly p: Parts,
    private readonly stopped: () => boolean,
  ) {}

  listen(stop: (signal: NodeJS.Signals) => void, hup?: () => void): void {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as NodeJS.Signals[]) {
      const fn = () => {
        const at = Date.now();
        const decided = new Promise<void>((resolve) => {
          setTimeout(() => {
            void this.decide(sig, at, stop, hup).finally(() => {
              this.pending.delete(decided);
              resolve();
            });
          }, SENDER_GRACE_MS);
        });
        this.pending.add(decided);
      };
      process.on(sig, fn);
      this.unhook.push(() => process.off(sig, fn));
    }
  }

  /** no more signals handled; the decisions under way are waited for */
  async close(): Promise<void> {
    for (const off of this.unhook.splice(0)) off();
    await Promise.all(this.pending);
  }

  /** a stop or reload signal, once the sensor had its chance to name the sender */
  private async decide(sig: NodeJS.Signals, at: number, stop: (signal: NodeJS.Signals) => void, hup?: () => void): Promise<void> {
    const { log, pipeline, sensor, o } = this.p;
    const sender = await this.senderOf(sig, at);
    if (sender === 'subject') {
      log.append({ kind: 'daemon', phase: 'signal-ignored', signal: sig, reason: 'sent by a subject process' });
      return;
    }
    if (this.stopped()) return;
    if (sender === 'unknown' && sig !== 'SIGHUP') {
      // never taken for an operator's stop: the subject may have blinded the sensor and sent
      // it in one breath. The daemon stops, the trial tripped; in enforce mode (or with
      // --fail-closed) the subject is frozen first and left so, not running unwatched.
      const blind = sensor instanceof PollSensor ? ', and the poll sensor cannot see signals' : ' while its process sensor was blind';
      log.append({ kind: 'daemon', phase: 'signal-unattributed', signal: sig, reason: 'the process sensor could not see who sent it' });
      pipeline.daemonAlert('redline.stop-by-unknown-sender', 'monitor.tamper', 'critical', `${sig} reached the daemon${blind}: the sender is unknown, and may be the subject`, { signal: sig });
      if (pipeline.mode === 'enforce' || o.config.failClosed) await pipeline.operatorFreeze('stop by unknown sender').catch(() => undefined);
    }
    if (sig === 'SIGHUP') hup?.();
    else stop(sig);
  }

  private async senderOf(sig: NodeJS.Signals, at: number): Promise<'subject' | 'operator' | 'unknown'> {
    const { pipeline, sensor } = this.p;
    if (sensor instanceof PollSensor) return 'unknown';
    if (pipeline.signalledBySubject(SIGNUM[sig] as number)) return 'subject';
    // the sensor answers its ping only after reading every line before it: the subject's
    // signal, had it sent one, included
    const answers = sensor.health().running && this.p.sensorBlindAt < at - SENDER_BLIND_MS && (await sensor.ping(SENDER_GRACE_MS));
    if (pipeline.signalledBySubject(SIGNUM[sig] as number)) return 'subject';
    return answers && this.p.sensorBlindAt < at - SENDER_BLIND_MS ? 'operator' : 'unknown';
  }
}
