// The probe scheduler, an active sensor: a replica's TCP port reachable on loopback is asked
// a few times while the server starts up (it listens before its model is loaded), from inside
// its network namespace when that is not the daemon's, until it answers like an inference
// API or the tries run out. Every answer is a `probe` event.
import { EventEmitter } from 'node:events';
import { readlinkSync } from 'node:fs';
import type { ListenEvent, ProbeEvent } from '../../events.js';
import { type ProbeAnswer, probe, probeInNetns } from '../../actions/probe.js';
import type { Sensor, SensorHealth } from '../sensor.js';

// a server listens before it has loaded its model: probe again while it starts up
const PROBE_AFTER_MS = [150, 1000, 3000];
const WILDCARD = ['0.0.0.0', '::'];

function netnsOf(pid: number | 'self'): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

export interface ProbeSchedulerOptions {
  probeTimeoutMs: number;
}

export class ProbeScheduler extends EventEmitter<{ event: [ProbeEvent] }> implements Sensor {
  readonly name = 'probe';
  private readonly netns = netnsOf('self');
  private stopped = false;
  private asked = 0;
  private answers = 0;

  constructor(private readonly o: ProbeSchedulerOptions) {
    super();
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.stopped = true;
  }

  ownPids(): number[] {
    return [];
  }

  health(): SensorHealth {
    return { name: this.name, running: !this.stopped, restarts: 0, lost: 0, events: this.answers, detail: `${this.asked} probes sent` };
  }

  /** a listener a replica (or a process a replica started) holds: probe it while it starts up */
  replicaListens(ev: ListenEvent): void {
    if (!ev.port || !ev.proto?.startsWith('tcp')) return;
    if (ev.addr !== undefined && !ev.loopback && !WILDCARD.includes(ev.addr)) return;
    const { pid, port, comm } = ev;
    const theirs = netnsOf(pid);
    if (theirs === null) return; // gone already
    const inNetns = this.netns !== null && theirs !== this.netns;
    const attempt = (i: number): void => {
      if (i >= PROBE_AFTER_MS.length || this.stopped) return;
      setTimeout(() => {
        if (this.stopped) return;
        this.asked++;
        const asked = inNetns ? probeInNetns(pid, port, this.o.probeTimeoutMs) : probe(port, this.o.probeTimeoutMs);
        void asked.then((answers) => {
          if (this.stopped) return;
          for (const a of answers) this.answered(pid, comm, port, inNetns, a);
          if (!answers.some((a) => a.inference)) attempt(i + 1);
        });
      }, PROBE_AFTER_MS[i]).unref();
    };
    attempt(0);
  }

  private answered(pid: number, comm: string | undefined, port: number, inNetns: boolean, a: ProbeAnswer): void {
    this.answers++;
    const ev: ProbeEvent = { type: 'probe', time: Date.now(), pid, comm, port, path: a.path, status: a.status ?? 0, answered: a.status !== null, inference: a.inference, excerpt: a.excerpt, latency_ms: a.latency_ms };
    if (a.error !== undefined) ev.error = a.error;
    if (inNetns) ev.netns = true;
    this.emit('event', ev);
  }
}
