// The scan accounting: when one subject process sweeps the system — reads the /proc entries
// of many other processes (ps, top, a script walking /proc), connects to many ports (a port
// scan), or lists many folders (find /, ls -R) — within a short window. One `scan` event per
// process and kind: the audit marks when a trial's exploration began.
import type { ConnectEvent, ListingEvent, ScanEvent } from '../events.js';
import type { SensorHealth } from '../sensors/sensor.js';
import type { Analyzer } from './analyzer.js';

export interface ScanThresholds {
  /** other processes' /proc entries read within procWindowMs */
  procs: number;
  procWindowMs: number;
  /** distinct destination ports (any address) within portWindowMs */
  ports: number;
  portWindowMs: number;
  /** folders listed within listWindowMs */
  folders: number;
  listWindowMs: number;
}

export const SCAN_THRESHOLDS: ScanThresholds = { procs: 32, procWindowMs: 5000, ports: 16, portWindowMs: 10_000, folders: 512, listWindowMs: 10_000 };

/** at most this many processes are followed at once (a fork bomb must not grow memory) */
const MAX_PROCS = 4096;
const SAMPLE = 8;

/** distinct keys seen within a window, oldest first */
class Window {
  private readonly seen = new Map<string, number>();
  constructor(private readonly ms: number) {}
  add(key: string, time: number): number {
    this.seen.delete(key);
    this.seen.set(key, time);
    for (const [k, t] of this.seen) {
      if (time - t <= this.ms) break;
      this.seen.delete(k);
    }
    return this.seen.size;
  }
  sample(): string[] {
    return [...this.seen.keys()].slice(-SAMPLE);
  }
}

interface PerProcess {
  procs?: Window;
  ports?: Window;
  /** listing counts in the window: [time, count] */
  listings?: [number, number][];
  reported: Set<ScanEvent['how']>;
}

/** /proc/1234/… → 1234 (a process's entry; /proc/self and the host's files are not) */
export function procPidOf(path: string): number | null {
  const m = /^\/proc\/(\d+)(\/|$)/.exec(path);
  return m ? Number(m[1]) : null;
}

/** an analyzer: each call returns the scan it found (once per process and kind), or null */
export class ScanTracker implements Analyzer {
  readonly name = 'scans';
  private readonly procs = new Map<number, PerProcess>();
  private found = 0;

  constructor(private readonly t: ScanThresholds = SCAN_THRESHOLDS) {}

  health(): SensorHealth {
    return { name: this.name, running: true, restarts: 0, lost: 0, events: this.found };
  }

  private of(pid: number): PerProcess {
    let p = this.procs.get(pid);
    if (!p) {
      if (this.procs.size >= MAX_PROCS) this.procs.delete(this.procs.keys().next().value as number);
      p = { reported: new Set() };
      this.procs.set(pid, p);
    }
    return p;
  }

  /** a subject process opened a /proc file (its name as given, or as the ingress named it) */
  procRead(pid: number, comm: string | undefined, path: string, time: number): ScanEvent | null {
    const other = procPidOf(path);
    if (other === null || other === pid) return null;
    const p = this.of(pid);
    if (p.reported.has('proc')) return null;
    p.procs ??= new Window(this.t.procWindowMs);
    const n = p.procs.add(String(other), time);
    return n < this.t.procs ? null : this.report(p, { type: 'scan', time, pid, comm, how: 'proc', count: n, window_ms: this.t.procWindowMs, sample: p.procs.sample() });
  }

  connected(ev: ConnectEvent): ScanEvent | null {
    const p = this.of(ev.pid);
    if (p.reported.has('ports')) return null;
    p.ports ??= new Window(this.t.portWindowMs);
    // distinct ports: one host's many ports, or many hosts' one port, both are a sweep
    const n = p.ports.add(`${ev.addr}:${ev.port}`, ev.time);
    return n < this.t.ports ? null : this.report(p, { type: 'scan', time: ev.time, pid: ev.pid, comm: ev.comm, how: 'ports', count: n, window_ms: this.t.portWindowMs, sample: p.ports.sample() });
  }

  listed(ev: ListingEvent): ScanEvent | null {
    const p = this.of(ev.pid);
    if (p.reported.has('listing')) return null;
    p.listings ??= [];
    p.listings.push([ev.time, ev.count]);
    while (p.listings.length > 0 && ev.time - (p.listings[0]?.[0] ?? ev.time) > this.t.listWindowMs) p.listings.shift();
    const n = p.listings.reduce((a, [, c]) => a + c, 0);
    return n < this.t.folders ? null : this.report(p, { type: 'scan', time: ev.time, pid: ev.pid, comm: ev.comm, how: 'listing', count: n, window_ms: this.t.listWindowMs, sample: [] });
  }

  /** a process that exited is forgotten (its pid may be reused) */
  exited(pid: number): void {
    this.procs.delete(pid);
  }

  private report(p: PerProcess, ev: ScanEvent): ScanEvent {
    p.reported.add(ev.how);
    this.found++;
    return ev;
  }
}
