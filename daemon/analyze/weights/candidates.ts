// Candidate copies: files being written that may be the weights. Each is held open through
// redline's own fd (renames, the writer's close and a missing name lose nothing), sized as it
// grows, and matched by content off the main thread; a match makes it registered weights
// itself, and once it stops growing its fingerprint is completed.
import { closeSync, fstatSync, openSync, readlinkSync } from 'node:fs';
import { fingerprint } from '../../sensors/weights/fingerprint.js';
import type { FileBytesEvent, OpenEvent } from '../../events.js';
import { type CandidateMatch, matchCandidate } from '../../sensors/weights/match.js';
import { type ParentOf, reachable } from '../../enrich/paths.js';
import type { WeightFile, WeightRegistry } from '../../sensors/weights/registry.js';

export type ProcessKey = string;

const MIB = 1 << 20;

export interface Candidate {
  /** the name it was opened under (what the alert reports); `… (deleted)` while it has none */
  path: string;
  /** redline's own fd on the file, opened through the writer's: it follows renames and outlives the writer's close */
  own: number;
  dev: number;
  ino: number;
  pid: number;
  /** the writer's identity (or, for one found by its reader, the reader's) */
  key: ProcessKey;
  /** found being written, or found being read or mapped whole-size by a process (a copy made unseen) */
  found: 'write' | 'read';
  /** the writer is not the subject's */
  outside: boolean;
  comm: string;
  size: number;
  lastGrowth: number;
  match: CandidateMatch | null;
  busy: boolean;
  /** a match was attempted at least once (false: a first look is still due) */
  checked: boolean;
  /** its size at the last look that found nothing (-1: none yet) */
  lookedAt: number;
  /** its mtime now, and at the last look that found nothing: a file written through a shared map changes in place, at the same size */
  mtime: number;
  lookedMtime: number;
  /** opens of this file seen before it was known to be the weights (a copy read right after it is made) */
  pendingReads: { ev: OpenEvent; key: ProcessKey; path: string }[];
  /** bytes read or mapped from it before it was known to be the weights (a copy served at once) */
  pendingBytes: { ev: FileBytesEvent; key: ProcessKey }[];
}

export interface CandidateHooks {
  /** the weights files the writer read: the likeliest sources */
  sourcesOf: (writer: ProcessKey) => string[];
  /** a match, first or better; `copy` is the registry entry it became (none for an archive) */
  matched: (c: Candidate, m: CandidateMatch, copy: WeightFile | null) => void;
  /** matching it, or handling its match, threw: a copy may be missed, and that must be said */
  failed: (c: Candidate, err: Error) => void;
  /** a process's parent (the process table): a writer in a mount namespace of its own names files there */
  parentOf: ParentOf;
}

export class CandidateCopies {
  private readonly byInode = new Map<string, Candidate>();

  constructor(
    private readonly registry: WeightRegistry,
    private readonly hooks: CandidateHooks,
    private readonly idleMs: number,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.byInode.size;
  }

  get(dev: number, ino: number): Candidate | undefined {
    return this.byInode.get(`${dev}:${ino}`);
  }

  /** a file being written becomes a candidate; false when it could not be opened (gone, replaced) */
  add(pid: number, fd: number, comm: string, writer: ProcessKey, path: string, st: { dev: number; ino: number }, found: 'write' | 'read' = 'write'): boolean {
    const key = `${st.dev}:${st.ino}`;
    if (this.byInode.has(key)) return true;
    if (this.byInode.size >= this.max) {
      const oldest = this.byInode.keys().next().value;
      if (oldest !== undefined) this.drop(oldest);
    }
    // through the writer's fd first when the name is gone (O_TMPFILE, unlinked): it is the file
    const viaFd = `/proc/${pid}/fd/${fd}`;
    // (by name through the writer's root when it has a mount namespace of its own)
    let own: number | null = null;
    if (!path.endsWith(' (deleted)')) for (const p of reachable(pid, path, this.hooks.parentOf)) if ((own = openSame(p, st)) !== null) break;
    own ??= openSame(viaFd, st);
    if (own === null) return false;
    this.byInode.set(key, { path, own, dev: st.dev, ino: st.ino, pid, key: writer, found, outside: false, comm, size: -1, lastGrowth: Date.now(), match: null, busy: false, checked: false, lookedAt: -1, mtime: 0, lookedMtime: 0, pendingReads: [], pendingBytes: [] });
    return true;
  }

  /** sizes every candidate, matches the ones due, and lets go of the ones done growing */
  tick(now: number): void {
    for (const [key, c] of this.byInode) this.check(key, c, now);
  }

  stop(): void {
    for (const key of [...this.byInode.keys()]) this.drop(key);
  }

  /** the first content match of this file is running or still due */
  matching(dev: number, ino: number): boolean {
    const c = this.get(dev, ino);
    return c !== undefined && !c.checked;
  }

  /** a match running, or a candidate big enough for a first look that has not had one */
  busy(): boolean {
    for (const c of this.byInode.values()) if (c.busy || (!c.checked && c.size >= MIB)) return true;
    return false;
  }

  private check(key: string, c: Candidate, now: number): void {
    if (c.busy) return;
    let size = c.size;
    let mtime = c.mtime;
    try {
      const st = fstatSync(c.own);
      size = st.size;
      mtime = st.mtimeMs;
    } catch {
      // our own fd cannot go stale; keep the last size if it somehow does
    }
    // written to: grown, or changed in place (a copy made through a shared map of a file
    // truncated to full size first)
    if (size !== c.size || mtime !== c.mtime) {
      c.size = size;
      c.mtime = mtime;
      c.lastGrowth = now;
    }
    const idle = now - c.lastGrowth;
    if (idle > this.idleMs) {
      if (c.match) void this.register(c).finally(() => this.drop(key));
      else this.drop(key);
      return;
    }
    // a file that matched nothing is looked at again only when it has doubled (its head or an
    // archive's first block may come late: written out of order) and once its writer pauses —
    // not on every tick, which re-hashed a growing derived copy all the way to its end
    const wantsFirst = c.match === null && c.size >= MIB && (c.lookedAt < 0 || c.size >= 2 * c.lookedAt || (idle >= 200 && (c.size !== c.lookedAt || c.mtime !== c.lookedMtime)));
    // a partial match is looked at again once the writer pauses: it may be complete now
    const wantsUpgrade = c.match?.kind === 'partial' && idle >= 200 && c.size >= c.match.source.fp.size;
    if (!wantsFirst && !wantsUpgrade) return;
    c.busy = true;
    const at = c.size;
    const atMtime = c.mtime;
    void matchCandidate(ownPath(c), this.registry, { preferSources: this.hooks.sourcesOf(c.key), ignoreOwnInode: c.match !== null })
      .then((m) => {
        if (!m) {
          c.lookedAt = at;
          c.lookedMtime = atMtime;
          return;
        }
        if (c.match && m.kind === c.match.kind) return;
        c.match = m;
        // known by its inode from now on, so a rename or a later read of it is still the weights;
        // the fingerprint is completed when the copy stops growing (an archive is not itself weights)
        let copy: WeightFile | null = null;
        if (m.kind !== 'archive' && !this.registry.byInode(c.dev, c.ino)) {
          copy = this.registry.addCopy(c.path, { ...m.source.fp, dev: c.dev, ino: c.ino, size: m.bytes }, m.source, m.kind);
        }
        this.hooks.matched(c, m, copy);
      })
      .catch((err: unknown) => this.hooks.failed(c, err instanceof Error ? err : new Error(String(err))))
      .finally(() => {
        c.busy = false;
        c.checked = true;
      });
  }

  /** no longer a candidate: it became registered weights by another way (a derived copy) */
  release(dev: number, ino: number): void {
    this.drop(`${dev}:${ino}`);
  }

  private drop(key: string): void {
    const c = this.byInode.get(key);
    if (!c) return;
    this.byInode.delete(key);
    if (c.busy) return void setTimeout(() => closeQuietly(c.own), 1000).unref();
    closeQuietly(c.own);
  }

  /** a finished copy becomes a weight file itself, with its lineage */
  private async register(c: Candidate): Promise<void> {
    if (!c.match || c.match.kind === 'archive') return;
    try {
      const fp = await fingerprint(ownPath(c));
      // registered under the name it has now (a copy may have been renamed since)
      let now = c.path;
      try {
        now = readlinkSync(ownPath(c));
      } catch {
        // keep the name it was written under
      }
      this.registry.addCopy(now.endsWith(' (deleted)') ? c.path : now, fp, c.match.source, c.match.kind);
    } catch {
      // removed or renamed before it could be read again: nothing more to learn from it
    }
  }
}

/** a path to the candidate through redline's own fd: valid whatever the writer renames it to */
function ownPath(c: Candidate): string {
  return `/proc/${process.pid}/fd/${c.own}`;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** an fd of ours on `path` if it is still the file with that inode */
function openSame(path: string, st: { dev: number; ino: number }): number | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  const now = fstatSync(fd);
  if (now.dev === st.dev && now.ino === st.ino) return fd;
  closeSync(fd);
  return null;
}
