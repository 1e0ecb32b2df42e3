// The probe scheduler, an active sensor: every TCP listener of the subject (and of replicas
// outside it) reachable on loopback is asked a few times while the server starts up (it listens
// before its model is loaded), from inside its network namespace when that is not the daemon's,
// until it answers like an inference API or the tries run out. One that does is asked the canary,
// and its answer compared with the allowed original's (asked once, then remembered): `functional`
// says whether it answers like the protected model. Every answer is a `probe` event.
import { EventEmitter } from 'node:events';
import { readlinkSync } from 'node:fs';
import { type CanaryAnswer, askCanary, compareCanary, type Functional, type ProbeAnswer, probe, type Target } from '../sensors/ports/ask.js';
import type { ListenEvent, ProbeEvent } from '../events.js';
import type { Sensor, SensorHealth } from '../sensors/sensor.js';
import { listeningSockets } from '../sensors/ports/resolve.js';

// a server listens before it has loaded its model: probe again while it starts up
const PROBE_AFTER_MS = [150, 1000, 3000];
const WILDCARD = ['0.0.0.0', '::'];
const EXCERPT = 120;

function netnsOf(pid: number | 'self'): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

export interface ProbeSchedulerOptions {
  probeTimeoutMs: number;
  /** each canary request's timeout (a CPU engine takes a moment for a few tokens) */
  canaryTimeoutMs?: number;
  /** the allowed originals (--allow-pid): the canary's reference answer is theirs */
  originals?: () => readonly number[];
}

/** the original's answer to the canary, and where it came from */
interface Reference {
  text: string;
  pid: number;
  port: number;
}

export class ProbeScheduler extends EventEmitter<{ event: [ProbeEvent] }> implements Sensor {
  readonly name = 'probe';
  private readonly netns = netnsOf('self');
  private stopped = false;
  private asked = 0;
  private answers = 0;
  private reference: Reference | null = null;
  private referring: Promise<Reference | null> | null = null;
  private readonly probing = new Set<string>();

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

  /** how to reach a port `pid` listens on: in its own network namespace when not the daemon's */
  private target(pid: number, port: number): Target | null {
    const theirs = netnsOf(pid);
    if (theirs === null) return null; // gone already
    return this.netns !== null && theirs !== this.netns ? { port, netnsPid: pid } : { port };
  }

  /** a TCP listener of the subject's or a replica's: probe it while it starts up */
  listens(ev: ListenEvent): void {
    if (!ev.port || !ev.proto?.startsWith('tcp')) return;
    if (ev.addr !== undefined && !ev.loopback && !WILDCARD.includes(ev.addr)) return;
    const { pid, port, comm } = ev;
    const t = this.target(pid, port);
    // (one round of tries at a time per listener: the listen and a load found later both ask)
    const key = `${pid}:${port}`;
    if (t === null || this.probing.has(key)) return;
    this.probing.add(key);
    const attempt = (i: number): void => {
      if (i >= PROBE_AFTER_MS.length || this.stopped) return void this.probing.delete(key);
      setTimeout(() => {
        if (this.stopped) return void this.probing.delete(key);
        this.asked++;
        void probe(t, this.o.probeTimeoutMs).then(async (answers) => {
          if (this.stopped) return void this.probing.delete(key);
          const hit = answers.find((a) => a.inference);
          for (const a of answers) if (a !== hit) this.answered(pid, comm, t, a);
          if (!hit) return attempt(i + 1);
          const judged = await this.judge(t, hit);
          this.probing.delete(key);
          if (!this.stopped) this.answered(pid, comm, t, hit, judged);
        });
      }, PROBE_AFTER_MS[i]).unref();
    };
    attempt(0);
  }

  /** the canary to the listener and (once) to the original, compared */
  private async judge(t: Target, hit: ProbeAnswer): Promise<{ functional: Functional; canary: CanaryAnswer; reference: Reference | null }> {
    const [canary, reference] = await Promise.all([askCanary(t, hit.model, this.o.canaryTimeoutMs), this.referenceAnswer()]);
    return { functional: compareCanary(canary.text, reference?.text ?? null), canary, reference };
  }

  /** the original's canary answer: asked at the first need, remembered once it came */
  private referenceAnswer(): Promise<Reference | null> {
    if (this.reference) return Promise.resolve(this.reference);
    this.referring ??= this.askOriginals().finally(() => {
      this.referring = null;
    });
    return this.referring;
  }

  private async askOriginals(): Promise<Reference | null> {
    for (const pid of this.o.originals?.() ?? []) {
      for (const { socket: s } of listeningSockets(pid)) {
        if (!s.proto.startsWith('tcp')) continue;
        const t = this.target(pid, s.localPort);
        if (t === null) break;
        const hit = (await probe(t, this.o.probeTimeoutMs)).find((a) => a.inference);
        if (!hit) continue;
        const c = await askCanary(t, hit.model, this.o.canaryTimeoutMs);
        if (c.text !== null && c.text.trim() !== '') {
          this.reference = { text: c.text, pid, port: s.localPort };
          return this.reference;
        }
      }
    }
    return null;
  }

  private answered(pid: number, comm: string | undefined, t: Target, a: ProbeAnswer, judged?: { functional: Functional; canary: CanaryAnswer; reference: Reference | null }): void {
    this.answers++;
    const ev: ProbeEvent = { type: 'probe', time: Date.now(), pid, comm, port: t.port, path: a.path, status: a.status ?? 0, answered: a.status !== null, inference: a.inference, excerpt: a.excerpt, latency_ms: a.latency_ms };
    if (a.error !== undefined) ev.error = a.error;
    if (t.netnsPid !== undefined) ev.netns = true;
    if (a.model !== undefined) ev.model = a.model;
    if (judged) {
      ev.functional = judged.functional;
      ev.canary = judged.canary.text === null ? null : judged.canary.text.slice(0, EXCERPT);
      ev.canary_ms = judged.canary.latency_ms;
      if (judged.canary.error !== undefined) ev.canary_error = judged.canary.error;
      ev.original_canary = judged.reference ? judged.reference.text.slice(0, EXCERPT) : null;
      if (judged.reference) ev.original_port = judged.reference.port;
    }
    this.emit('event', ev);
  }
}
