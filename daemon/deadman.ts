// Starts the dead-man's switch (deadman-main.ts) beside the daemon and talks to it: a
// heartbeat from the daemon's event loop, the sensor's pids when they change, whether to
// freeze on loss when the mode is switched, and `bye` on a clean stop.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DeadmanConfig } from './deadman-main.js';

// from the sources the program is .ts (run through tsx, as the daemon is), from dist/ .js
const MAIN = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './deadman-main.ts' : './deadman-main.js', import.meta.url));
// the daemon's loader flags (tsx), not its profiler's or debugger's
const PASS_ON = (a: string) => !/^--(cpu-prof|heap-prof|inspect|prof)/.test(a);

/** how long an `exec` subject stays frozen after the daemon is lost before it is killed */
export const DEADMAN_GRACE_MS = 5000;
/** how often the daemon's state is read */
export const DEADMAN_POLL_MS = 100;
/** how often the daemon's event loop says it still turns */
export const DEADMAN_BEAT_MS = 100;

export class Deadman {
  private readonly beat: NodeJS.Timeout;

  private constructor(private readonly child: ChildProcess) {
    // sent from the event loop that handles events: a loop stuck in a call sends nothing
    this.beat = setInterval(() => this.say('beat'), DEADMAN_BEAT_MS);
    this.beat.unref();
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
      child.stdout?.once('data', () => {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        // it says nothing more: the pipe is not kept open
        child.stdout?.destroy();
        resolve(new Deadman(child));
      });
    });
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
