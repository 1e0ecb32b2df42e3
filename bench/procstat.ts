// What a benchmark reads of a process: CPU ticks, resident memory, its children by name.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** clock ticks a second (USER_HZ: 100 on Linux) */
export const CLK_TCK = 100;

export function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

export function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** the process's child running `comm` (bpftrace, the libbpf loader), if any */
export function childNamed(pid: number, comm: string): number | undefined {
  return childrenOf(pid).find((c) => {
    try {
      return readFileSync(`/proc/${c}/comm`, 'utf8').trim() === comm;
    } catch {
      return false;
    }
  });
}

/** runs node with `args` to its end: wall seconds, peak RSS (VmHWM, sampled every 20 ms) and exit code */
export async function measuredRun(args: string[], prefix: string[] = []): Promise<{ seconds: number; peak_rss_mb: number; code: number | null }> {
  const t0 = performance.now();
  // a prefix that execs its command in place (taskset, nice) keeps the pid measured
  const argv = [...prefix, process.execPath, ...args];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
      peak = Math.max(peak, hwm / 1024);
    } catch {
      // exited
    }
  }, 20);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(timer);
  return { seconds: Math.round((performance.now() - t0) / 10) / 100, peak_rss_mb: Math.round(peak), code };
}
