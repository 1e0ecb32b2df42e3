// What the load accounting keeps of each reader of the weights: the bytes it read of each
// file, how (read, pread, mapped), what it wrote and where, and what has been decided of it.
import { dirname } from 'node:path';
import type { Destination } from '../../enrich/destination.js';
import { readStat } from '../../sensors/proc/read.js';
import type { WeightFile } from '../../sensors/weights/registry.js';

export type ProcessKey = string;
export type LoadHow = 'mmap' | 'read' | 'pread' | 'mixed';

export interface Load {
  pid: number;
  comm: string;
  /** the weight file whose bytes crossed the share (the alert names it) */
  weight: WeightFile;
  how: LoadHow;
  /** bytes of the model mapped or read */
  bytes: number;
  /** of the model's registered bytes */
  share: number;
  /** the kernel did not count the process as the subject's */
  outside: boolean;
  /** kernel time the share was crossed */
  time: number;
}

/** a pipe a reader of the weights wrote into: whoever reads it gets the weights' bytes */
export interface CarryingPipe {
  weight: WeightFile;
  /** the pid that wrote the weights' bytes into it */
  from: number;
  /** that writer's own account: how much of the weights it had (through pipes too) */
  reader: Reader;
}

export interface PerFile {
  weight: WeightFile;
  read: number;
  /** a running total from the kernel (capped at the size), not a delta */
  mapped: number;
}

export interface Reader {
  pid: number;
  comm: string;
  files: Map<WeightFile, PerFile>;
  classes: Set<'mmap' | 'read' | 'pread'>;
  written: number;
  outside: boolean;
  /** crossed the share by reading alone: when (kernel time) and with what */
  pending: Load | null;
  done: boolean;
  /** what it wrote, by file or socket */
  dests: Map<string, Destination>;
  /** bytes it wrote into pipes (passed on, not kept: neither a destination nor a copy) */
  piped: number;
  /** it got the weights' bytes through a pipe, from this pid */
  pipedFrom: number | null;
  /** that pipe's writer: what came through it is credited as read (a pipe is known late, its first steps uncounted) */
  upstream: Reader | null;
  /** a copy of the weights was found by content among what it wrote: a copier, never derived */
  copied: boolean;
  /** wrote enough to be a derived copy (kernel time), awaiting a content match that would say otherwise */
  derivedAt: number | null;
  derivedSeen: number;
  derivedDone: boolean;
  /** reported as a derived copy in progress (kernel time), before the share was crossed */
  earlyAt: number | null;
  /** exited, kept only until its derived copy is judged */
  gone: boolean;
}

export const CLASS: Record<string, 'read' | 'pread' | 'mmap'> = {
  read: 'read', readv: 'read', sendfile: 'read', splice: 'read', copy_file_range: 'read',
  pread: 'pread', preadv: 'pread', preadv2: 'pread', uring_read: 'pread', mmap: 'mmap',
};

/** where the reader wrote the most */
export function largestDest(r: Reader): Destination | null {
  let dest: Destination | null = null;
  for (const d of r.dests.values()) if (!dest || d.bytes > dest.bytes) dest = d;
  return dest;
}

/** the weight file it read the most of */
export function topWeight(r: Reader): WeightFile | undefined {
  return [...r.files.values()].sort((a, b) => b.read + b.mapped - (a.read + a.mapped))[0]?.weight;
}

export function modelOf(w: WeightFile): string {
  return `${dirname(w.path)}\u0000${w.fp.format}`;
}

/** the process behind `${pid}:${start}` is still the one running under that pid */
export function isAlive(key: ProcessKey): boolean {
  const [pid, start] = key.split(':');
  const st = readStat(Number(pid));
  return st !== null && (start === '?' || String(st.starttime) === start);
}
