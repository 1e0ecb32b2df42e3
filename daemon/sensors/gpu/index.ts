// The GPU sensor: polls nvidia-smi (never more than one call in flight), and reports each
// compute process that appears on a GPU or whose memory moves by at least `changeMib`.
import { EventEmitter } from 'node:events';
import type { GpuEvent } from '../../events.js';
import { findExecutable } from '../ebpf/host.js';
import type { Sensor, SensorHealth, SensorTrouble } from '../sensor.js';
import { diffApps, type Reported } from './diff.js';
import { APPS_ARGS, GPUS_ARGS, parseComputeApps, parseGpus } from './parse.js';
import { type Run, type RunOutcome, runBounded } from './run.js';
import { readStat } from '../proc/read.js';

export interface GpuOptions {
  /** the nvidia-smi binary: a path, or a name looked up on PATH */
  nvidiaSmi: string;
  intervalMs?: number;
  timeoutMs?: number;
  /** report a pid again when its usage moves by at least this many MiB */
  changeMib?: number;
  /** the sanctioned server(s): their footprint is what a replica is measured against */
  allowPids?: number[];
  /** a process holding at least this share of the allowed footprint is replica-like */
  replicaShare?: number;
}

type ResolvedOptions = Readonly<Required<Omit<GpuOptions, 'allowPids'>> & { allowPids: ReadonlySet<number> }>;
type Reason = 'timeout' | 'garbage' | 'failed';
type Poll = { kind: 'ok' } | { kind: Reason; detail: string };
const OK: Poll = { kind: 'ok' };

/** emitted as 'recovered' once nvidia-smi answers well after trouble (not an alert) */
export interface GpuRecovery {
  sensor: string;
  detail: string;
}

/** null when nvidia-smi can be run from here, else why the GPU sensor is off (for `doctor`) */
export function gpuUnavailableReason(nvidiaSmi = 'nvidia-smi'): string | null {
  if (findExecutable(nvidiaSmi)) return null;
  return nvidiaSmi.includes('/') ? `nvidia-smi not found or not executable at ${nvidiaSmi}` : `${nvidiaSmi} not found on PATH (no NVIDIA driver tools on this host)`;
}

function resolveOptions(o: GpuOptions): ResolvedOptions {
  const r = {
    nvidiaSmi: o.nvidiaSmi,
    intervalMs: o.intervalMs ?? 1000,
    timeoutMs: o.timeoutMs ?? 3000,
    changeMib: o.changeMib ?? 256,
    replicaShare: o.replicaShare ?? 0.5,
    allowPids: new Set(o.allowPids ?? []),
  };
  if (!r.nvidiaSmi) throw new Error('GpuSensor: nvidiaSmi must name the nvidia-smi binary');
  if (!(r.intervalMs > 0)) throw new Error(`GpuSensor: intervalMs must be above 0 (got ${r.intervalMs})`);
  if (!(r.timeoutMs > 0)) throw new Error(`GpuSensor: timeoutMs must be above 0 (got ${r.timeoutMs})`);
  if (!(r.changeMib >= 0)) throw new Error(`GpuSensor: changeMib must be 0 or more (got ${r.changeMib})`);
  if (!(r.replicaShare > 0 && r.replicaShare <= 1)) throw new Error(`GpuSensor: replicaShare must be above 0 and at most 1 (got ${r.replicaShare})`);
  return Object.freeze(r);
}

export class GpuSensor extends EventEmitter implements Sensor {
  readonly name = 'gpu';
  private readonly o: ResolvedOptions;
  /** the binary as found on PATH at start(), for the messages to name it */
  private bin: string;
  private reported: Reported = new Map();
  /** problems reported since nvidia-smi last answered well: each is reported once */
  private problems = new Set<Reason>();
  private lastProblem = '';
  private running = false;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<Poll> | null = null;
  private runs: Run[] = [];
  private events = 0;
  private polls = 0;

  constructor(opts: GpuOptions) {
    super();
    this.o = resolveOptions(opts);
    this.bin = this.o.nvidiaSmi;
  }

  ownPids(): number[] {
    // each call lives for milliseconds; protecting them would only race with their exit
    return [];
  }

  health(): SensorHealth {
    return {
      name: this.name,
      running: this.running,
      restarts: 0,
      lost: 0,
      events: this.events,
      detail: this.problems.size > 0 ? this.lastProblem : this.running ? `${this.polls} polls of ${this.bin}` : undefined,
    };
  }

  /**
   * Resolves after the first poll. Rejects when nvidia-smi is missing or exits non-zero on
   * that first call (no usable driver here: nothing to watch, the sensor is off); a first
   * call that hangs or prints garbage is trouble instead and polling goes on, since the
   * tool is there but unwell — an alert is worth more than a silent "off" then.
   */
  async start(): Promise<void> {
    if (this.running) return;
    const why = gpuUnavailableReason(this.o.nvidiaSmi);
    if (why) throw new Error(why);
    this.bin = findExecutable(this.o.nvidiaSmi) ?? this.o.nvidiaSmi;
    this.stopping = false;
    const first = await this.poll(true);
    if (first.kind === 'failed') throw new Error(first.detail);
    if (this.stopping) return;
    this.running = true;
    this.schedule(this.o.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const r of this.runs) r.child?.kill('SIGKILL');
    // a child stuck in the driver may never exit; stop() must return all the same
    if (this.inFlight) await Promise.race([this.inFlight, new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const t0 = Date.now();
      // fixed rate while polls are quick; never overlapping when they are slow
      // schedule() only arms a timer; were it to throw, the crash handler fails closed
      void this.poll(false)
        .catch((err: unknown) => this.listenerFailed(err))
        .then(() => this.schedule(Math.max(0, this.o.intervalMs - (Date.now() - t0))));
    }, delayMs);
  }

  /** both queries at once; settles only when both children have exited */
  private async poll(first: boolean): Promise<Poll> {
    this.polls++;
    const apps = runBounded(this.bin, APPS_ARGS, this.o.timeoutMs);
    const gpus = runBounded(this.bin, GPUS_ARGS, this.o.timeoutMs);
    this.runs = [apps, gpus];
    const done = (async () => {
      try {
        const [a, g] = await Promise.all([apps.outcome, gpus.outcome]);
        return this.stopping ? OK : this.handle(a, g, first);
      } finally {
        await Promise.all([apps.exited, gpus.exited]);
        this.runs = [];
      }
    })();
    this.inFlight = done;
    try {
      return await done;
    } finally {
      this.inFlight = null;
    }
  }

  private handle(apps: RunOutcome, gpus: RunOutcome, first: boolean): Poll {
    if (apps.kind !== 'ok') return this.trouble(apps, first);
    if (gpus.kind !== 'ok') return this.trouble(gpus, first);
    const a = parseComputeApps(apps.stdout);
    if (!a.ok) return this.trouble({ kind: 'garbage', detail: `unreadable output from ${this.bin} ${APPS_ARGS[0]}: ${a.error}` }, first);
    const g = parseGpus(gpus.stdout);
    if (!g.ok) return this.trouble({ kind: 'garbage', detail: `unreadable output from ${this.bin} ${GPUS_ARGS[0]}: ${g.error}` }, first);
    this.recovered();
    const d = diffApps(this.reported, a.records, g.records, { ...this.o, identity: processIdentity }, Date.now());
    this.reported = d.reported;
    for (const ev of d.events) this.deliver(ev);
    return OK;
  }

  private deliver(ev: GpuEvent): void {
    this.events++;
    try {
      this.emit('event', ev);
    } catch (err) {
      // the rest of this poll's events still go out
      this.listenerFailed(err);
    }
  }

  private trouble(o: Exclude<RunOutcome, { kind: 'ok' }> | { kind: 'garbage'; detail: string }, first: boolean): Poll {
    const reason: Reason = o.kind === 'missing' ? 'failed' : o.kind;
    this.lastProblem = o.detail;
    // on the first call a failure becomes start()'s rejection, not an alert
    if (first && reason === 'failed') return { kind: 'failed', detail: o.detail };
    if (!this.problems.has(reason)) {
      this.problems.add(reason);
      this.emit('trouble', { sensor: this.name, reason, detail: o.detail } satisfies SensorTrouble);
    }
    return { kind: reason, detail: o.detail };
  }

  /** a throwing listener is the daemon's bug, but the sensor must outlive it */
  private listenerFailed(err: unknown): void {
    try {
      this.trouble({ kind: 'failed', detail: `a GPU event listener threw: ${err instanceof Error ? err.message : String(err)}` }, false);
    } catch {
      // the 'trouble' listener threw too: nothing left to tell
    }
  }

  /** nvidia-smi answers well again: the gap is noted, and problems may be reported anew */
  private recovered(): void {
    if (this.problems.size === 0) return;
    const after = [...this.problems].join(', ');
    this.problems.clear();
    this.emit('recovered', { sensor: this.name, detail: `${this.bin} answers again (after: ${after})` } satisfies GpuRecovery);
  }
}

/** pid and start time, as the process table keys a process; a pid /proc does not show stays bare */
function processIdentity(pid: number): string {
  return `${pid}:${readStat(pid)?.starttime ?? '?'}`;
}
