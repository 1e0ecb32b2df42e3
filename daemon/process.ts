// What the process table knows of a process, and an event with its processes filled in.
// Types and pure helpers only: the engine imports these and nothing that does I/O.
import type { SensorEvent } from './events.js';

export interface ProcInfo {
  /** `${pid}:${start}` — unique even when the kernel reuses the pid */
  readonly key: string;
  readonly pid: number;
  /** clock ticks since boot, as /proc/PID/stat field 22 */
  readonly start: number;
  ppid: number;
  pgid: number;
  sid: number;
  uid: number;
  comm: string;
  exe: string;
  args: string[];
  /** the parent at fork time (kept after the process is reparented) */
  parent: ProcInfo | null;
  subject: boolean;
  allowed: boolean;
  protected: boolean;
  /** the daemon itself or one of its sensor processes */
  monitor: boolean;
  replica: boolean;
  /** it loaded the weights itself (a replica's children are replicas, but did not load them) */
  loadedWeights: boolean;
  /** 1 for a replica the subject started, 2 for one a replica started, …; 0: not a replica */
  replicaGen: number;
  /** it, or the process it was forked from, has read the protected weights */
  readWeights: boolean;
  alive: boolean;
  /** false when the process vanished before anything could be read about it */
  known: boolean;
  /** the sensor saw it call setsid(): it made its session itself */
  madeSession?: boolean;
  /** its pid inside its own pid namespace, when that is not the host's (seen at its exec) */
  nsPid?: number;
  /** the inode of its pid namespace, when the sensor said (at its exec) */
  pidns?: number;
  children: Set<ProcInfo>;
}

export interface Enriched {
  event: SensorEvent;
  proc: ProcInfo;
  /** for signals: the first process hit (or the unknown process) */
  target: ProcInfo | null;
  /** for signals: every process the signal reaches that redline could name */
  targets: ProcInfo[];
  broadcast: boolean;
  /** for group signals: the process group */
  group: number;
  /** for weights loads and copies: the replica's (or the copy's) generation */
  generation?: number;
  /** for weights loads and copies: replicas alive now */
  liveReplicas?: number;
  /** for reparents: the orphan's session leader, alive now; and whether the sensor saw it make that session */
  sessionLeaderAlive?: boolean;
  sessionMadeBySubject?: boolean;
}

export const MAX_ANCESTRY = 64;

export function ancestorsOf(p: ProcInfo): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (let a = p.parent; a && out.length < MAX_ANCESTRY; a = a.parent) out.push(a);
  return out;
}

/**
 * The arguments of a command that say what it is: paths and long words, not `-p` or `6`.
 * The program name alone (python3, sh) says nothing of which job ran it.
 */
export function telling(args: string[]): string[] {
  return args.slice(1).filter((a) => a.length >= 6 && (a.includes('/') || /[A-Za-z]/.test(a)) && !a.startsWith('-'));
}

/**
 * `text` (a job file, a command line) names the command whose telling arguments are `args`:
 * all of them, so a script name shared by two servers is not enough. The longest is returned.
 */
export function namesCommand(text: string, args: string[]): string | null {
  if (args.length === 0 || !args.every((a) => text.includes(a))) return null;
  return args.reduce((a, b) => (b.length > a.length ? b : a));
}
