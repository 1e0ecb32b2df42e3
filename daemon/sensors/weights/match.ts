// Is this file (being written right now, perhaps) the weights? By inode, by its first MiB,
// by sampled blocks, or by the weights' first 64 KiB inside it (archives).
import { statSync } from 'node:fs';
import { HEAD_BYTES, hashRanges, type Range, type Sample, samplePlan, scanFor } from './fingerprint.js';
import type { WeightFile, WeightRegistry } from './registry.js';

export interface CandidateMatch {
  kind: 'full' | 'partial' | 'hardlink' | 'archive';
  source: WeightFile;
  /** where in the candidate the weight bytes start */
  offset: number;
  /** the candidate's size when it matched */
  bytes: number;
}

export interface MatchOptions {
  /** files the writer read: the likeliest source when several registered files match */
  preferSources?: readonly string[];
  /** how far into a candidate to look for the weights' first block (archives); default 16 MiB */
  archiveScanBytes?: number;
  /**
   * the candidate is already registered under its own inode (a partial copy, looked at again
   * once complete): that entry is the candidate itself, not a source or a hard link
   */
  ignoreOwnInode?: boolean;
}

// tar puts member data at 512-byte boundaries
const TAR_BLOCK = 512;
const ARCHIVE_SCAN_BYTES = 16 << 20;
// a same-size file whose head differs is still the weights when this many samples past the
// first MiB agree (a header edited in place to dodge the head hash)
const MIN_TAIL_SAMPLES = 4;

/** the files the writer read first, then the oldest generation: the closest ancestor */
function rank(files: readonly WeightFile[], prefer: readonly string[]): WeightFile[] {
  const preferred = new Set(prefer);
  return [...files].sort((a, b) => Number(preferred.has(b.path)) - Number(preferred.has(a.path)) || a.generation - b.generation || a.registeredAt - b.registeredAt);
}

/** how many samples at or past `from` agree; null when any of them differs */
function samplesAgree(want: readonly Sample[], plan: readonly Range[], got: readonly (string | null)[], from = 0): number | null {
  // a registered partial copy carries its source's samples, taken for another size
  if (want.length !== plan.length) return null;
  let agree = 0;
  for (let i = 0; i < want.length; i++) {
    const s = want[i] as Sample;
    if (s.offset !== plan[i]?.offset) return null;
    if (s.offset < from) continue;
    if (got[i] !== s.hash) return null;
    agree++;
  }
  return agree;
}

/**
 * null: not the weights, or not enough evidence yet (under 1 MiB; the caller looks again as
 * it grows), or the file vanished or cannot be read — a race is never an exception here.
 */
export async function matchCandidate(path: string, registry: WeightRegistry, opts: MatchOptions = {}): Promise<CandidateMatch | null> {
  try {
    return await match(path, registry, opts);
  } catch {
    // vanished, unreadable, replaced by something else, or the pool was closed
    return null;
  }
}

async function match(path: string, registry: WeightRegistry, opts: MatchOptions): Promise<CandidateMatch | null> {
  // a stat on the main thread: microseconds, where a round trip to the libuv pool queues
  // behind whatever else is there (watcher stats) exactly while a copy floods the disk
  const st = statSync(path);
  if (!st.isFile()) return null;
  const notSelf = (w: WeightFile) => !opts.ignoreOwnInode || w.fp.dev !== st.dev || w.fp.ino !== st.ino;
  const same = registry.byInode(st.dev, st.ino);
  if (same && notSelf(same)) return { kind: 'hardlink', source: same, offset: 0, bytes: st.size };
  if (st.size < HEAD_BYTES) return null;
  const prefer = opts.preferSources ?? [];

  const h = await hashRanges(path, [{ offset: 0, length: HEAD_BYTES }]);
  // replaced between the stat and the read: the caller looks again
  if (h.dev !== st.dev || h.ino !== st.ino) return null;
  const size = h.size;
  const head = h.hashes[0];
  const sources = head ? rank(registry.byHead(head).filter(notSelf), prefer) : [];
  const sameSize = rank(sources.length > 0 ? sources.filter((s) => s.fp.size === size) : registry.bySize(size).filter(notSelf), prefer);

  if (sameSize.length > 0) {
    // one read of the plan serves every same-size source: the plan depends on the size alone
    const plan = samplePlan(size);
    const got = await hashRanges(path, plan);
    if (got.ino === h.ino && got.size === size) {
      if (sources.length > 0) {
        const full = sameSize.find((s) => samplesAgree(s.fp.samples, plan, got.hashes) !== null);
        if (full) return { kind: 'full', source: full, offset: 0, bytes: size };
      } else {
        const edited = sameSize.find((s) => (samplesAgree(s.fp.samples, plan, got.hashes, HEAD_BYTES) ?? 0) >= MIN_TAIL_SAMPLES);
        if (edited) return { kind: 'partial', source: edited, offset: 0, bytes: size };
      }
    }
  }
  const first = sources[0];
  if (first) return { kind: 'partial', source: first, offset: 0, bytes: size };

  const targets = registry.archiveTargets();
  if (targets.length === 0) return null;
  const limit = Math.min(opts.archiveScanBytes ?? ARCHIVE_SCAN_BYTES, size);
  const hits = await scanFor(path, { limit, step: TAR_BLOCK, targets });
  for (const hit of hits) {
    const source = rank(registry.byHead64(hit.head64).filter(notSelf), prefer)[0];
    if (!source) continue;
    // the weights' first 64 KiB at offset 0 with a different first MiB: a copy edited near
    // its start, not an archive
    return { kind: hit.offset === 0 ? 'partial' : 'archive', source, offset: hit.offset, bytes: size };
  }
  return null;
}
