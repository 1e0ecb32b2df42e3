// Runs the real CLI as a child process, and reads what it logged.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The built CLI, as `npx redline` runs it (package.json's bin): tests/run.sh rebuilds dist/
 * first when a source is newer. (Through tsx each start costs about half a second more, and a
 * trial starts three: the supervisor, the monitor, its watchdog.)
 */
export const CLI = join(ROOT, 'dist/daemon/cli.js');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** the unprivileged user the tests run redline as (nobody), where they test life without root */
export const USER_UID = 65534;

/** `as`: a uid to run it as (setpriv, no capabilities, its own uid as its group) instead of root */
export function startRedline(args: string[], env: NodeJS.ProcessEnv = {}, as?: number): { child: ChildProcess; done: Promise<Run> } {
  const node = [process.execPath, CLI, ...args];
  const argv = as === undefined ? node : ['setpriv', `--reuid=${as}`, `--regid=${as}`, '--clear-groups', '--', ...node];
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<Run>((resolve) => {
    let ended: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let grace: NodeJS.Timeout | null = null;
    const finish = () => {
      if (grace) clearTimeout(grace);
      resolve({ ...(ended ?? { code: null, signal: null }), stdout, stderr });
    };
    child.on('exit', (code, signal) => {
      ended = { code, signal };
      // a subject left frozen (fail closed) still holds the pipes it inherited: the run is over
      // when redline exits, whatever else keeps them open
      grace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, 2000);
    });
    child.on('close', (code, signal) => {
      ended ??= { code, signal };
      finish();
    });
  });
  return { child, done };
}

/**
 * Stops a daemon a test started as a clean stop would (SIGTERM, then SIGKILL after `ms`): one
 * killed outright leaves its watchdog writing the loss into the test's folder as it is removed.
 */
export async function stopRedline(d: { child: ChildProcess; done: Promise<unknown> } | undefined, ms = 20_000): Promise<void> {
  if (!d || d.child.exitCode !== null || d.child.signalCode !== null) return;
  d.child.kill('SIGTERM');
  const stopped = await Promise.race([d.done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
  if (!stopped) d.child.kill('SIGKILL');
}

export function redline(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000, as?: number): Promise<Run> {
  const { child, done } = startRedline(args, env, as);
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return done.finally(() => clearTimeout(t));
}

export interface LogRecord {
  seq: number;
  time: number;
  kind: string;
  prev: string;
  hash: string;
  [k: string]: unknown;
}

export function readLog(path: string): LogRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogRecord);
}

export const alertsOf = (recs: LogRecord[]) => recs.filter((r) => r.kind === 'alert');

export function tempDir(prefix = 'redline-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // retried: a watchdog whose daemon a test killed may still be writing its records there
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }) };
}

/** polls the log until `pred` holds for some record */
export async function waitForRecord(path: string, pred: (r: LogRecord) => boolean, timeoutMs = 20_000): Promise<LogRecord> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const r = readLog(path).find(pred);
    if (r) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no matching record in ${path} after ${timeoutMs} ms:\n${readFileSync(path, 'utf8').slice(-3000)}`);
}
