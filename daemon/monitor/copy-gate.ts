// The copy gate and the pin: a reader of the weights the kernel stopped at its first MiB
// written is held while the weights tracker judges what it wrote, then resumed (unless an
// alert froze the subject meanwhile); one outside the subject is held only until the tracker
// holds its file open.
import { EbpfSensor } from '../sensors/ebpf/index.js';
import type { Parts } from './parts.js';

/** the copy gate: a held writer is judged for at least this long, and at most GATE_MAX_MS */
const GATE_MIN_MS = 30;
const GATE_MAX_MS = 500;
/** the pin: how long a writer outside the subject is held at most while its file is opened */
const PIN_MAX_MS = 200;

export interface Held {
  pid: number;
  time: number;
  fd: number;
  ino: number;
  dev: number;
}

/** the copy gate on in enforce mode (not under --trials-under: one sandbox's freeze is not another's) */
export function setGate(p: Parts, mode: 'observe' | 'enforce'): void {
  if (!(p.sensor instanceof EbpfSensor) || p.trials || p.weightPaths.length === 0) return;
  const on = p.sensor.gate(p.weightPaths, mode === 'enforce');
  p.log.append({ kind: 'daemon', phase: 'gate', on: on && mode === 'enforce', files: p.weightPaths.length, detail: on ? undefined : 'no libbpf loader: nothing can hold a writer' });
}

function resume(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // gone meanwhile
  }
}

/**
 * A reader of the weights was stopped at its first MiB written: it stays stopped while the
 * weights tracker judges what it wrote (at least GATE_MIN_MS, at most GATE_MAX_MS); then it
 * is resumed, unless an alert froze the subject meanwhile (it stays held, frozen).
 */
export function held(p: Parts, h: Held): void {
  const t0 = performance.now();
  if (!p.table.get(h.pid)?.subject) return pinned(p, h, t0);
  const check = () => {
    const ms = performance.now() - t0;
    if (!p.pipeline.frozen && ms < GATE_MAX_MS && (ms < GATE_MIN_MS || p.tracker.busy())) {
      setTimeout(check, 5);
      return;
    }
    const frozen = p.pipeline.frozen;
    if (!frozen) resume(h.pid);
    p.log.append({ kind: 'daemon', phase: 'gate-held', pid: h.pid, fd: h.fd, held_ms: Math.round(ms * 10) / 10, outcome: frozen ? 'frozen' : 'resumed', trial: p.o.trial });
  };
  setTimeout(check, 5);
}

/**
 * A reader of the weights outside the subject was stopped at its first MiB written to a file:
 * resumed as soon as the weights tracker holds that file open (a short-lived writer, a host
 * job that copies and exits, can then be gone before the copy is matched), at most PIN_MAX_MS,
 * whatever else happens: it is not the subject's to freeze.
 */
function pinned(p: Parts, h: Held, t0: number): void {
  const check = () => {
    const ms = performance.now() - t0;
    const isPinned = p.tracker.pinned(h.dev, h.ino);
    if (!isPinned && ms < PIN_MAX_MS) return void setTimeout(check, 2);
    resume(h.pid);
    p.log.append({ kind: 'daemon', phase: 'pin-held', pid: h.pid, fd: h.fd, held_ms: Math.round(ms * 10) / 10, outcome: isPinned ? 'pinned' : 'not pinned', trial: p.o.trial });
  };
  setImmediate(check);
}
