// Starts the dead-man's switch (deadman-main.ts) beside the daemon and talks to it: a
// heartbeat from the daemon's event loop, the sensor's pids when they change, whether to
// freeze on loss when the mode is switched, and `bye` on a clean stop. It answers with a
// `resumed` event each time it freed a held monitor process (the daemon logs it).
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { DeadmanConfig } from './deadman-main.js';
import type { ResumeAnswer } from './deadman-resume.js';
import { LineSplitter } from './lines.js';

export type { ResumeAnswer } from './deadman-resume.js';

// from the sources the program is .ts (run through tsx, as the daemon is), from dist/ .js
const MAIN = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './deadman-main.ts' : './deadman-main.js', import.meta.url));
// the daemon's loader flags (tsx), not its profiler's or debugger's
const PASS_ON = (a: string) => !/^--(cpu-prof|heap-prof|inspect|prof)/.test(a);

/** how long an `exec` subject stays frozen after the daemon is lost before it is killed */
export const DEADMAN_GRACE_MS = 5000;
/**
 * How often the daemon's state is read: a stopped, traced or frozen monitor is freed within
 * about this. Measured here (2 cores, idle daemon): the watchdog takes ~2% of a core at 50 ms,
 * ~3.3% at 25 ms, ~1.2% at 100 ms; 50 ms keeps a resume an order below the 0.5 s it must meet.
 */
export const DEADMAN_POLL_MS = 50;
/** how often the daemon's event loop says it still turns */
export const DEADMAN_BEAT_MS = 100;

/** a resume as the daemon logs it: the alert's sentence, its fields, and the cause of a freeze in enforce mode */
export interface Resumed {
  answer: ResumeAnswer;
  summary: string;
  details: Record<string, unknown>;
  cause: string;
}

export class Deadman extends EventEmitter<{ resumed: [Resumed] }> {
  private readonly beat: NodeJS.Timeout;

  private constructor(
    private readonly child: ChildProcess,
    /** the pid it watches: this process, but for a test's stand-in */
    private readonly daemonPid: number,
    rest: string,
  ) {
    super();
    // sent from the event loop that handles events: a loop stuck in a call sends nothing
    this.beat = setInterval(() => this.say('beat'), DEADMAN_BEAT_MS);
    this.beat.unref();
    // the first at once: the watchdog's window counts from it
    this.say('beat');
    this.listen(rest);
  }

  /** the watchdog's answers, one JSON line each; the pipe must not keep the daemon alive */
  private listen(rest: string): void {
    const out = this.child.stdout;
    if (!out) return;
    (out as Socket).unref?.();
    out.on('error', () => undefined);
    // (a watchdog that prints garbage without newlines must not grow memory: 64 KiB at most)
    const answers = new LineSplitter((line) => {
      let a: unknown;
      try {
        a = JSON.parse(line.trim());
      } catch {
        return; // not an answer (nothing else is printed, but a torn line must not throw here)
      }
      if (a && typeof a === 'object' && (a as ResumeAnswer).resumed === true) this.emit('resumed', this.resumed(a as ResumeAnswer));
    }, 65_536);
    // what came with `ready` goes first, once the caller has had its turn to listen; what comes
    // meanwhile waits behind it
    let waiting: string[] | null = rest ? [] : null;
    out.on('data', (chunk: string) => (waiting ? waiting.push(chunk) : answers.push(chunk)));
    if (rest) {
      setImmediate(() => {
        answers.push(rest);
        for (const c of waiting ?? []) answers.push(c);
        waiting = null;
      });
    }
  }

  /** resolves once the watchdog is armed (it said `ready`); rejects when it is not within `timeoutMs` */
  static start(c: DeadmanConfig, timeoutMs = 30_000): Promise<Deadman> {
    // its own session: a signal to the daemon's process group does not reach it
    const child = spawn(process.execPath, [...process.execArgv.filter(PASS_ON), MAIN, JSON.stringify(c)], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    child.unref();
    // a watchdog that died makes writes to it fail: that is for the caller's health check, not a crash
    child.stdin?.on('error', () => undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the watchdog did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the watchdog exited at start (${code})`));
      });
      child.stdout?.setEncoding('utf8');
      let first = '';
      const ready = (chunk: string) => {
        first += chunk;
        const nl = first.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stdout?.off('data', ready);
        // kept open after `ready`: the watchdog's answers come on it
        resolve(new Deadman(child, c.daemonPid, first.slice(nl + 1)));
      };
      child.stdout?.on('data', ready);
    });
  }

  private resumed(answer: ResumeAnswer): Resumed {
    // `pid` of the alert is the daemon's own (it raises it): the freed pids go by another name
    const { resumed: _, pids, ...rest } = answer;
    const details = { ...rest, resumed_pids: pids, by: 'watchdog', watchdog_pid: this.pid };
    return { answer, summary: resumedSummary(answer, this.daemonPid, this.pid), details, cause: `the monitor was ${HELD[answer.what]}` };
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  sensors(pids: number[]): void {
    this.say(`sensor ${pids.join(' ')}`);
  }

  /** after a mode switch: freeze the subject if the daemon is lost (enforce, --fail-closed) or not */
  freezeOnLoss(freeze: boolean): void {
    this.say(`freeze ${freeze ? 1 : 0}`);
  }

  /** a clean stop: the watchdog exits without acting */
  bye(): void {
    clearInterval(this.beat);
    if (!this.child.stdin || this.child.stdin.destroyed || this.child.stdin.writableEnded) return;
    this.child.stdin.write('bye\n');
    this.child.stdin.end();
  }

  private say(line: string): void {
    const s = this.child.stdin;
    if (!s || s.destroyed || s.writableEnded) return;
    s.write(`${line}\n`);
  }
}

const HELD: Record<ResumeAnswer['what'], string> = { stopped: 'stopped', traced: 'traced', 'frozen-cgroup': 'frozen' };

/** the one sentence an alert says about a resume: who was held, how, by whom, and how fast it was freed */
export function resumedSummary(a: ResumeAnswer, daemonPid: number, watchdogPid?: number): string {
  const its = a.pids.includes(daemonPid) ? 'its' : 'the monitor’s';
  const who = a.pids.map((p) => (p === daemonPid ? `the monitor (pid ${p})` : p === watchdogPid ? `${its} watchdog (pid ${p})` : `${its} sensor (pid ${p})`)).join(' and ');
  const ms = `${Math.round(a.latency_ms)} ms`;
  const [was, it] = a.pids.length > 1 ? ['were', 'them'] : ['was', 'it'];
  if (a.what === 'traced') {
    const t = a.tracer ? `${a.tracer.comm} (pid ${a.tracer.pid}${a.tracer.cgroup ? `, cgroup ${a.tracer.cgroup}` : ''})` : 'an unknown tracer';
    return `${who} ${was} held by ptrace from ${t}; the watchdog killed the tracer and resumed ${it} after ${ms}`;
  }
  if (a.what === 'frozen-cgroup') return `${who} ${was} frozen or moved in cgroup ${a.group ?? '?'}; the watchdog thawed ${it}${a.home ? ` and moved ${it} back to ${a.home}` : ''} after ${ms}`;
  return `${who} ${was} stopped (SIGSTOP); the watchdog resumed ${it} after ${ms}`;
}
