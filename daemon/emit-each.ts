// Calls each listener of an event on its own: one that throws neither reaches the emitter's
// caller nor keeps the event from the listeners after it. Shared by the outputs that must
// not be stopped by an observer (the audit log's records, the pipeline's alerts).
import type { EventEmitter } from 'node:events';

/** true when there was a listener; `failed` hears each listener's error */
export function emitEach(emitter: EventEmitter, name: string | symbol, args: unknown[], failed: (err: unknown) => void): boolean {
  if (emitter.listenerCount(name) === 0) return false;
  // a once-listener's wrapper removes itself when called
  for (const listener of emitter.rawListeners(name)) {
    try {
      (listener as (...a: unknown[]) => void).apply(emitter, args);
    } catch (err) {
      failed(err);
    }
  }
  return true;
}
