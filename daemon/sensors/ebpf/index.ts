// The eBPF sensor: a supervised bpftrace child running the generated script, and beside it,
// when it was built, the libbpf loader counting the weights' bytes (loader/); each restarted
// when it dies.
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import { monotonicToEpoch, nowMs } from '../../clock.js';
import type { SensorEvent } from '../../events.js';
import { resolvePidfd } from './pidfd.js';
import type { Sensor, SensorHealth, SensorTrouble } from '../sensor.js';
import { ensureTracefs, findExecutable, findLoader, type LoaderFiles, loaderUnavailableReason } from './host.js';
import { type BpftraceLine, type Clock, parseLine, parseLoaderLine } from './parse.js';
import { generateScript, type SubjectFilter } from './script.js';
import { LineSplitter } from '../../lines.js';

export interface EbpfOptions {
  filter: SubjectFilter;
  bpftrace?: string;
  /** how long to wait for the probes to attach */
  attachTimeoutMs?: number;
  /** report read-only opens of small files too (a rule asks for them) */
  allOpens?: boolean;
  /** the scan accounting (procfs opens, folders listed): off when no loaded rule looks at scans */
  scans?: boolean;
  /** the libbpf loader; default: the built one (findLoader), null: bpftrace counts the bytes */
  loader?: LoaderFiles | null;
}

/** the sensor's two children */
type Part = 'bpftrace' | 'loader';

/** how long stop() waits for a killed bpftrace to be gone (see stopBpftrace) */
const STOP_WAIT_MS = 300;

/** the longest line a sensor prints (an argv of 64 KiB, a path of 4 KiB, well within it) */
const MAX_LINE = 1 << 20;
/** how much of a sensor process's stderr is kept for the message when it fails to start */
const STDERR_KEPT = 8192;

// Harmless on this kernel family (DESIGN.md); anything else on stderr is reported.
const NOISE = [/RLIMIT_MEMLOCK/, /^\s*$/, /^Attaching \d+ probes/];

export class EbpfSensor extends EventEmitter implements Sensor {
  readonly name = 'ebpf';
  private child: ChildProcess | null = null;
  private loaderChild: ChildProcess | null = null;
  private stopping = false;
  private restarts = 0;
  private lost = 0;
  private events = 0;
  private lastError = '';
  private readonly clock: Clock = monotonicToEpoch();
  private script = '';
  private readonly bpftrace: string;
  private readonly restartTimers: Record<Part, NodeJS.Timeout | null> = { bpftrace: null, loader: null };
  /** argv lines waiting for their exec line, by thread */
  private readonly argv = new Map<number, { time: number; args: string[] | null }>();
  /** rename's new names waiting for their change line, by thread */
  private readonly newNames = new Map<number, { time: number; dfd: number; name: string }>();
  /** the loader, while it counts the bytes (null: bpftrace does) */
  private loader: LoaderFiles | null;
  /** why bpftrace counts the bytes (not built, turned off, or the kernel would not load it) */
  private loaderWhy: string | null = null;
  /** the copy gate's state, told to the loader again when it restarts */
  private gateWeights: string[] = [];
  private gateOn = false;

  constructor(private readonly opts: EbpfOptions) {
    super();
    this.loader = opts.loader === undefined ? findLoader() : opts.loader;
    if (!this.loader) this.loaderWhy = opts.loader === undefined ? loaderUnavailableReason() : 'not given';
    this.bpftrace = opts.bpftrace ?? findExecutable('bpftrace') ?? 'bpftrace';
    this.makeScript();
  }

  private makeScript(): void {
    this.script = generateScript(this.opts.filter, { allOpens: this.opts.allOpens, syscallBytes: this.loader === null, scans: this.opts.scans !== false });
  }

  scriptText(): string {
    return this.script;
  }

  /** what counts the bytes read and written through syscalls */
  bytesBy(): 'libbpf' | 'bpftrace' {
    return this.loader ? 'libbpf' : 'bpftrace';
  }

  /** why bpftrace counts the bytes (undefined while the loader does) */
  bytesByWhy(): string | undefined {
    return this.loader ? undefined : (this.loaderWhy ?? undefined);
  }

  ownPids(): number[] {
    return [this.child?.pid, this.loaderChild?.pid].filter((p): p is number => p !== undefined);
  }

  /** pings waiting for their echo: each says whether a pong from `part` at `time` completes it */
  private readonly pings = new Set<(time: number, part: Part) => boolean>();

  /** the parts that did not echo the last ping that went unanswered (for the log) */
  silentParts: Part[] = [];

  /**
   * Does the sensor see and read now? The daemon signals itself with 0 (a no-op each program
   * echoes, in order with its events): true once bpftrace's echo is read, and the loader's
   * when it runs (every line either printed before is read then); false when one does not
   * come within `timeoutMs` (a child dead, stopped, or not reading). The signal is sent again
   * every half second while an echo is owed: one echo dropped (the loader's ring buffer full
   * for a moment) is not taken for a sensor that stopped reading.
   */
  ping(timeoutMs = 300): Promise<boolean> {
    if (!this.child || this.child.exitCode !== null) return Promise.resolve(false);
    if (this.loader && (!this.loaderChild || this.loaderChild.exitCode !== null)) return Promise.resolve(false);
    const sent = nowMs();
    const owed = new Set<Part>(this.loader ? ['bpftrace', 'loader'] : ['bpftrace']);
    const signal = () => {
      try {
        process.kill(process.pid, 0);
      } catch {
        // signal 0 to oneself cannot fail; if it did, no echo comes and the answer is false
      }
    };
    return new Promise((resolve) => {
      let over = false;
      const done = (ok: boolean) => {
        if (over) return;
        over = true;
        clearTimeout(timer);
        clearInterval(again);
        this.pings.delete(answered);
        if (!ok) this.silentParts = [...owed];
        resolve(ok);
      };
      const answered = (time: number, part: Part) => {
        // a pong from before this ping answers an older one
        if (time < sent - 1) return false;
        owed.delete(part);
        if (owed.size > 0) return false;
        done(true);
        return true;
      };
      // (after the time is up, what the pipes already hold is read first: an event loop that
      // was busy past the deadline runs timers before it polls)
      const timer = setTimeout(() => setImmediate(() => done(false)), timeoutMs);
      const again = setInterval(signal, 500);
      this.pings.add(answered);
      signal();
    });
  }

  health(): SensorHealth {
    const alive = (c: ChildProcess | null) => c !== null && c.exitCode === null;
    return {
      name: this.name,
      running: alive(this.child) && (this.loader === null || alive(this.loaderChild)),
      restarts: this.restarts,
      lost: this.lost,
      events: this.events,
      detail: this.lastError || undefined,
    };
  }

  async start(): Promise<void> {
    const why = ensureTracefs();
    if (why) throw new Error(why);
    // the loader first (it attaches in milliseconds): when it cannot, bpftrace counts the bytes
    if (this.loader) {
      try {
        await this.spawnOnce('loader');
      } catch (err) {
        this.trouble({ sensor: this.name, reason: 'stderr', detail: `the libbpf loader did not start (${(err as Error).message}); bpftrace counts the weights' bytes instead` });
        this.loader = null;
        this.loaderWhy = `the loader did not start: ${(err as Error).message}`;
        this.makeScript();
      }
    }
    try {
      await this.spawnOnce('bpftrace');
    } catch (err) {
      await this.stopLoader();
      throw err;
    }
  }

  /** the child's command line: setpriv execs it in place with a parent-death signal, so that a daemon killed outright takes its sensor along instead of leaving it tracing, orphaned */
  private command(part: Part): [string, string[]] {
    const [bin, args] = part === 'bpftrace' ? [this.bpftrace, ['-f', 'json', '-B', 'line', '-e', this.script]] : [this.loader?.bin ?? '', [this.loader?.obj ?? '', String(process.pid), this.loaderSubject()]];
    const setpriv = findExecutable('setpriv');
    return setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
  }

  /** the subject's scope as the loader takes it: a cgroup by its id (the inode of its folder) and depth, or a uid */
  private loaderSubject(): string {
    const f = this.opts.filter;
    return f.kind === 'uid' ? `uid:${f.uid}` : `cgroup:${statSync(f.path).ino}${f.level === undefined ? '' : `:${f.level}`}`;
  }

  private spawnOnce(part: Part): Promise<void> {
    const what = part === 'bpftrace' ? 'bpftrace' : 'the libbpf loader';
    return new Promise((resolve, reject) => {
      const [cmd, argv] = this.command(part);
      const child = spawn(cmd, argv, {
        // (the loader takes the copy gate's weights and switch on stdin)
        stdio: [part === 'loader' ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        // 1 MiB of perf buffer per CPU (bpftrace's default is 256 KiB): a burst of short
        // processes fills it faster than bpftrace drains it on a busy machine
        env: { ...process.env, BPFTRACE_STRLEN: '200', BPFTRACE_PERF_RB_PAGES: process.env.BPFTRACE_PERF_RB_PAGES ?? '256' },
      });
      if (part === 'bpftrace') this.child = child;
      else this.loaderChild = child;
      const parse: (line: string, clock: Clock) => BpftraceLine = part === 'bpftrace' ? parseLine : parseLoaderLine;
      let attached = false;
      let stderr = '';
      const timer = setTimeout(() => {
        if (attached) return;
        child.kill('SIGKILL');
        reject(new Error(`${what} did not attach within ${this.opts.attachTimeoutMs ?? 30000} ms: ${stderr.trim()}`));
      }, this.opts.attachTimeoutMs ?? 30000);
      child.stdout?.setEncoding('utf8');
      const lines = new LineSplitter(
        (line) => {
          try {
            const parsed = parse(line, this.clock);
            if (parsed.kind === 'ready' && !attached) {
              attached = true;
              clearTimeout(timer);
              if (part === 'loader') this.tellGate();
              resolve();
            }
            else if (parsed.kind === 'held') this.emit('held', parsed); else if (parsed.kind === 'event') this.deliver(parsed.event);
            else if (parsed.kind === 'argv') this.argvSeen(parsed.tid, parsed.time, parsed.args);
            else if (parsed.kind === 'newname') this.newNameSeen(parsed.tid, parsed.time, parsed.dfd, parsed.name);
            else if (parsed.kind === 'pong') {
              for (const answered of this.pings) if (answered(parsed.time, part)) this.pings.delete(answered);
            }
            else if (parsed.kind === 'lost') {
              this.lost += parsed.count;
              this.trouble({ sensor: this.name, reason: 'lost-events', detail: `${what} lost ${parsed.count} events`, lost: parsed.count });
            } else if (parsed.kind === 'error') this.trouble({ sensor: this.name, reason: 'stderr', detail: parsed.message });
          } catch (err) {
            // one line that cannot be handled is one event lost, not the sensor
            this.trouble({ sensor: this.name, reason: 'garbage', detail: `a line of ${what} could not be handled: ${(err as Error).message}`, lost: 1 });
          }
        },
        MAX_LINE,
        (chars) => this.trouble({ sensor: this.name, reason: 'garbage', detail: `${what} printed ${chars} characters with no newline: dropped`, lost: 1 }),
      );
      child.stdout?.on('data', (chunk: string) => lines.push(chunk));
      child.stderr?.setEncoding('utf8');
      const errLines = new LineSplitter((line) => {
        if (NOISE.some((re) => re.test(line))) return;
        const lost = /Lost (\d+) events/.exec(line);
        if (lost) {
          this.lost += Number(lost[1]);
          this.trouble({ sensor: this.name, reason: 'lost-events', detail: line.trim(), lost: Number(lost[1]) });
        } else if (attached) this.trouble({ sensor: this.name, reason: 'stderr', detail: line.trim() });
      }, STDERR_KEPT);
      child.stderr?.on('data', (chunk: string) => {
        // kept for the start-up failure's message only: its end, not the sensor's whole life
        stderr = (stderr + chunk).slice(-STDERR_KEPT);
        errLines.push(chunk);
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        if (!attached) reject(err);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.child === child) this.child = null;
        if (this.loaderChild === child) this.loaderChild = null;
        if (!attached) {
          reject(new Error(`${what} exited before attaching (${signal ?? code}): ${stderr.trim().slice(-2000)}`));
          return;
        }
        if (this.stopping) return;
        this.lastError = `${what} exited (${signal ?? `code ${code}`})`;
        this.trouble({ sensor: this.name, reason: 'died', detail: `${this.lastError}; restarting`, ...(signal ? { signal } : {}) });
        this.scheduleRestart(part, 250);
      });
    });
  }

  private scheduleRestart(part: Part, delayMs: number): void {
    if (this.stopping || this.restartTimers[part]) return;
    this.restartTimers[part] = setTimeout(() => {
      this.restartTimers[part] = null;
      if (this.stopping) return;
      this.restarts++;
      this.spawnOnce(part).then(
        () => this.emit('restarted'),
        (err: Error) => {
          this.lastError = err.message;
          this.trouble({ sensor: this.name, reason: 'restart-failed', detail: err.message });
          this.scheduleRestart(part, Math.min(delayMs * 2, 5000));
        },
      );
    }, delayMs);
  }

  private deliver(ev: SensorEvent): void {
    this.events++;
    if (ev.type === 'signal' && ev.pidfd !== undefined) resolvePidfd(ev);
    if (ev.type === 'exec') {
      const a = this.argv.get(ev.tid ?? ev.pid);
      if (a && a.time === ev.time && a.args) ev.args = a.args;
      this.argv.delete(ev.tid ?? ev.pid);
    }
    if (ev.type === 'file_change' && ev.op === 'rename') {
      const n = this.newNames.get(ev.tid ?? ev.pid);
      if (n && n.time === ev.time) {
        ev.to_dfd = n.dfd;
        ev.to_filename = n.name;
      }
      this.newNames.delete(ev.tid ?? ev.pid);
    }
    this.emit('event', ev);
  }

  /** an argv line comes just before its exec line (another CPU's lines may come between) */
  private argvSeen(tid: number, time: number, args: string[] | null): void {
    this.argv.set(tid, { time, args });
    if (this.argv.size > 256) this.argv.delete(this.argv.keys().next().value as number);
  }

  /** a rename's new name comes just before its change line, as an argv before its exec */
  private newNameSeen(tid: number, time: number, dfd: number, name: string): void {
    this.newNames.set(tid, { time, dfd, name });
    if (this.newNames.size > 256) this.newNames.delete(this.newNames.keys().next().value as number);
  }

  /**
   * The copy gate (enforce mode, the libbpf loader only): a subject process that read one of
   * these files is stopped at its first MiB written to any one file, socket or pipe (a 'held'
   * event), until the daemon resumes it or freezes the subject. False where nothing can hold.
   */
  gate(weights: readonly string[], on: boolean): boolean {
    this.gateWeights = [...weights];
    this.gateOn = on;
    return this.tellGate();
  }

  private tellGate(): boolean {
    const s = this.loaderChild?.stdin;
    if (!this.loader || !s || s.destroyed) return false;
    s.on('error', () => undefined);
    for (const w of this.gateWeights) if (!w.includes('\n')) s.write(`w ${w}\n`);
    s.write(`g ${this.gateOn ? 1 : 0}\n`);
    return true;
  }

  private trouble(t: SensorTrouble): void {
    this.emit('trouble', t);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of Object.values(this.restartTimers)) if (t) clearTimeout(t);
    await Promise.all([this.stopBpftrace(), this.stopLoader()]);
  }

  /**
   * bpftrace stops reading at any signal and prints nothing more (the daemon drained it
   * first), so it gets SIGKILL at once. Its exit then takes seconds: the kernel detaches its
   * tracepoints one by one (about 80 ms each here). The daemon waits for that at most
   * STOP_WAIT_MS: the process can run no code of its own by then, and the kernel ends it.
   */
  private async stopBpftrace(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.unref();
        resolve();
      }, STOP_WAIT_MS);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGKILL');
    });
  }

  /** the loader, at SIGINT, hands over what its ring buffer still holds and exits (milliseconds) */
  private async stopLoader(): Promise<void> {
    const child = this.loaderChild;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    });
  }
}
