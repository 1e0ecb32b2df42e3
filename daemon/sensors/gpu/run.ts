// One bounded nvidia-smi call. A wedged driver can leave nvidia-smi stuck, even past
// SIGKILL (uninterruptible sleep), so the answer ("it timed out") and the end of the child
// are separate: the caller learns of the timeout at once, and starts no new call until the
// old child is really gone — stuck children never pile up.
import { type ChildProcess, execFile } from 'node:child_process';

export type RunOutcome =
  | { kind: 'ok'; stdout: string }
  | { kind: 'timeout'; detail: string }
  /** it ran and exited non-zero or by a signal; detail carries its own message */
  | { kind: 'failed'; detail: string }
  /** it could not be started at all (ENOENT, EACCES) */
  | { kind: 'missing'; detail: string };

export interface Run {
  /** null when it could not even be spawned */
  child: ChildProcess | null;
  /** settles at the answer or at the timeout, whichever comes first */
  outcome: Promise<RunOutcome>;
  /** settles once the child has exited (at once when it never started) */
  exited: Promise<void>;
}

// nvidia-smi prints its failures ("NVIDIA-SMI has failed because …") on stdout
function firstLine(...texts: string[]): string {
  for (const t of texts) {
    const line = t.split('\n').find((l) => l.trim() !== '');
    if (line) return line.trim().slice(0, 300);
  }
  return '';
}

export function runBounded(bin: string, args: readonly string[], timeoutMs: number): Run {
  let settle: (o: RunOutcome) => void = () => undefined;
  const outcome = new Promise<RunOutcome>((r) => {
    settle = r;
  });
  let markExited: () => void = () => undefined;
  const exited = new Promise<void>((r) => {
    markExited = r;
  });
  let child: ChildProcess;
  try {
    child = execFile(bin, [...args], { encoding: 'utf8', maxBuffer: 4 << 20, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      clearTimeout(timer);
      if (!err) return settle({ kind: 'ok', stdout });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES') {
        markExited();
        return settle({ kind: 'missing', detail: `${bin}: ${code === 'ENOENT' ? 'not found' : 'permission denied'}` });
      }
      const how = typeof code === 'number' ? `exit ${code}` : (err.signal ?? String(code ?? 'error'));
      const msg = firstLine(stdout, stderr) || err.message.split('\n')[0] || '';
      settle({ kind: 'failed', detail: `${bin} failed (${how}): ${msg}` });
    });
  } catch (err) {
    markExited();
    settle({ kind: 'missing', detail: `${bin}: ${(err as Error).message}` });
    return { child: null, outcome, exited };
  }
  // a promise settles once: a late answer after the timeout is simply dropped
  const timer = setTimeout(() => {
    child.kill('SIGKILL');
    settle({ kind: 'timeout', detail: `${bin} did not answer within ${timeoutMs} ms (killed)` });
  }, timeoutMs);
  // 'exit' rather than the callback's 'close': a grandchild holding the pipes must not keep
  // the sensor waiting once nvidia-smi itself is gone
  child.once('exit', () => markExited());
  child.once('error', () => {
    if (child.pid === undefined) markExited();
  });
  return { child, outcome, exited };
}
