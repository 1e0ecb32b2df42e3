// The kernel guard: what refuses the subject's attacks on its monitor before they land.
//   - The BPF LSM guard (kernel/guard.bpf.c, run by kernel/guard.c as `redline-guard`), where
//     the kernel lets its programs load: signals, ptrace, the monitor's files by inode,
//     cgroups other than the subject's, bpf(), modules. Its records become `attempt` events.
//   - The subject's seccomp filter (enter/enter.c, `redline-enter`), installed by `exec` as it
//     starts the subject: signals, ptrace and the scheduling calls aimed at monitor pids,
//     bpf(), modules. It refuses by numbers only (no files, no cgroups).
// `guard: kernel` means the BPF LSM guard runs; anything less is `detect-only`, with the reason.
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monotonicToEpoch } from '../clock.js';
import type { SensorHealth } from '../sensors/sensor.js';
import type { SubjectFilter } from '../sensors/ebpf/script.js';
import { parseGuardLine } from './parse.js';
import { LineSplitter } from '../lines.js';

export interface GuardStatus {
  guard: 'kernel' | 'detect-only';
  /** why not `kernel` (absent when it is) */
  guard_reason?: string;
  /** exec: the subject runs under redline-enter's seccomp filter */
  seccomp?: boolean;
}

/** the folder the built helpers are in (dist/loader), or null */
function builtDir(): string | null {
  const dirs = [fileURLToPath(new URL('../../dist/loader', import.meta.url)), fileURLToPath(new URL('../../loader', import.meta.url))];
  return dirs.find((d) => existsSync(d)) ?? null;
}

function executable(path: string): boolean {
  try {
    return (statSync(path).mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** REDLINE_GUARD=off turns both guards off (the detection fallback is then what runs) */
function turnedOff(): boolean {
  return process.env.REDLINE_GUARD === 'off';
}

/** why no guard of either kind can run on this host, or null */
function hostReason(): string | null {
  if (turnedOff()) return 'turned off (REDLINE_GUARD=off)';
  if (process.arch !== 'x64') return `its filters read x86_64 syscall numbers; this is ${process.arch}`;
  if (process.getuid?.() !== 0) return 'not root: the kernel already refuses an unprivileged subject most attacks on a root monitor, and redline cannot load the guard';
  return null;
}

/** `redline-enter`, when exec can start the subject through it */
export function seccompEntry(): string | null {
  if (hostReason()) return null;
  const dir = builtDir();
  const bin = dir ? join(dir, 'redline-enter') : '';
  return dir && executable(bin) ? bin : null;
}

/** why the BPF LSM guard cannot be tried here (before trying), or null */
export function lsmReason(): string | null {
  const host = hostReason();
  if (host) return host;
  let lsm = '';
  try {
    lsm = readFileSync('/sys/kernel/security/lsm', 'utf8');
  } catch {
    return 'no /sys/kernel/security/lsm (mount securityfs there to see whether the BPF LSM is active)';
  }
  if (!lsm.split(',').map((s) => s.trim()).includes('bpf')) return `the BPF LSM is not active (lsm=${lsm.trim()}; add bpf to the kernel's lsm= parameter)`;
  const dir = builtDir();
  if (!dir || !executable(join(dir, 'redline-guard')) || !existsSync(join(dir, 'guard.bpf.o'))) return 'the BPF LSM guard was not built (clang, bpftool and libbpf-dev at npm ci)';
  return null;
}

/** the kernel's refusal to load the programs, in words a user can act on */
function loadFailure(stderr: string): string {
  const last = stderr.trim().split('\n').filter((l) => !l.startsWith('libbpf:')).pop() ?? stderr.trim();
  if (/Operation not permitted/.test(stderr)) return `the kernel refused to load the BPF LSM programs (EPERM) although the BPF LSM is listed as active (a host that forbids BPF trampolines refuses fentry and LSM programs alike); ${last}`;
  return `the BPF LSM guard did not start: ${last}`;
}

const READY = 'REDLINE-GUARD-READY';

/**
 * The running BPF LSM guard. Events: 'event' (attempt), 'trouble'. Lists change while it
 * runs (monitor pids, protected pids, the monitor's files, the mode): each is one stdin line.
 */
export class LsmGuard extends EventEmitter {
  readonly name = 'guard';
  private events = 0;
  private lost = 0;
  private readonly clock = monotonicToEpoch();

  private constructor(private readonly child: ChildProcess) {
    super();
    // a guard that died makes writes to it fail: its exit is the trouble, not a crash
    child.stdin?.on('error', () => undefined);
  }

  /** starts it and resolves once its programs are attached; rejects with the reason when they cannot be */
  static start(filter: SubjectFilter, timeoutMs = 10_000): Promise<LsmGuard> {
    const why = lsmReason();
    if (why) return Promise.reject(new Error(why));
    const dir = builtDir() as string;
    const subject = filter.kind === 'uid' ? `uid:${filter.uid}` : `cgroup:${statSync(filter.path).ino}${filter.level === undefined ? '' : `:${filter.level}`}`;
    const child = spawn(join(dir, 'redline-guard'), [join(dir, 'guard.bpf.o'), subject], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new Promise((resolve, reject) => {
      let stderr = '';
      let guard: LsmGuard | null = null;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the BPF LSM guard did not attach within ${timeoutMs} ms`));
      }, timeoutMs);
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => {
        stderr += d;
        if (guard) guard.emit('trouble', { sensor: 'guard', reason: 'stderr', detail: d.trim() });
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`the BPF LSM guard did not start: ${err.message}`));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (!guard) reject(new Error(loadFailure(stderr || `exit ${signal ?? code}`)));
        else guard.emit('trouble', { sensor: 'guard', reason: 'died', detail: `the BPF LSM guard exited (${signal ?? `code ${code}`}): the kernel refuses nothing more` });
      });
      child.stdout?.setEncoding('utf8');
      const lines = new LineSplitter((line) => {
        if (guard) return guard.line(line);
        if (line === READY) {
          clearTimeout(timer);
          guard = new LsmGuard(child);
          resolve(guard);
        }
      });
      child.stdout?.on('data', (chunk: string) => lines.push(chunk));
    });
  }

  private line(line: string): void {
    const parsed = parseGuardLine(line, this.clock);
    if (parsed.kind === 'event') {
      this.events++;
      this.emit('event', parsed.event);
    } else if (parsed.kind === 'lost') {
      this.lost += parsed.count;
      this.emit('trouble', { sensor: 'guard', reason: 'lost-events', detail: `the BPF LSM guard lost ${parsed.count} records`, lost: parsed.count });
    } else if (parsed.kind === 'error') this.emit('trouble', { sensor: 'guard', reason: 'stderr', detail: parsed.message });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  ownPids(): number[] {
    return this.child.pid ? [this.child.pid] : [];
  }

  private say(line: string): void {
    const s = this.child.stdin;
    if (s && !s.destroyed && !s.writableEnded) s.write(`${line}\n`);
  }

  monitor(pids: readonly number[]): void {
    for (const p of pids) if (p > 0) this.say(`m ${p}`);
  }

  protect(pids: readonly number[]): void {
    for (const p of pids) if (p > 0) this.say(`p ${p}`);
  }

  /** the monitor's files, by the inode each path names now (a file made later is added when it is) */
  files(paths: readonly string[]): void {
    for (const p of paths) if (existsSync(p) && !p.includes('\n')) this.say(`f ${p}`);
  }

  mode(enforce: boolean): void {
    this.say(`e ${enforce ? 1 : 0}`);
  }

  health(): SensorHealth {
    return { name: this.name, running: this.child.exitCode === null && this.child.signalCode === null, restarts: 0, lost: this.lost, events: this.events };
  }

  /** its stdin closed: it detaches its programs and exits */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.stdin?.end();
      setTimeout(() => this.child.kill('SIGKILL'), 2000).unref();
    });
  }
}
