// Is this file (being written right now, perhaps) the weights? By inode, by its first MiB,
// by sampled blocks, or by the weights' first block inside it (archives).
import { statSync } from 'node:fs';
import { HEAD_BYTES, HEAD4_BYTES, HEAD64_BYTES, samplePlan } from './fingerprint.js';
import { hashRanges, scanFor } from './hasher.js';
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
  archiveScanBytes?: number;
}

// tar puts member data at 512-byte boundaries
const TAR_BLOCK = 512;

function pick(files: WeightFile[], prefer: readonly string[]): WeightFile | undefined {
  return [...files].sort((a, b) => Number(prefer.includes(b.path)) - Number(prefer.includes(a.path)) || a.generation - b.generation)[0];
}

export async function matchCandidate(path: string, registry: WeightRegistry, opts: MatchOptions = {}): Promise<CandidateMatch | null> {
  try {
    const st = statSync(path);
    const same = registry.byInode(st.dev, st.ino);
    if (same) return { kind: 'hardlink', source: same, offset: 0, bytes: st.size };
    if (st.size < HEAD_BYTES) return null;
    const [head] = await hashRanges(path, [{ offset: 0, length: HEAD_BYTES }]);
    const sources = head ? registry.byHead(head) : [];
    if (sources.length > 0) {
      const prefer = opts.preferSources ?? [];
      const sameSize = sources.filter((s) => s.fp.size === st.size);
      for (const s of [pick(sameSize, prefer)].filter((x): x is WeightFile => x !== undefined)) {
        const got = await hashRanges(path, samplePlan(st.size));
        if (got.every((h, i) => h === s.fp.samples[i]?.hash)) return { kind: 'full', source: s, offset: 0, bytes: st.size };
      }
      return { kind: 'partial', source: pick(sources, prefer) as WeightFile, offset: 0, bytes: st.size };
    }
    const targets = registry.allHead4();
    if (targets.length === 0) return null;
    const limit = Math.min(opts.archiveScanBytes ?? 16 << 20, st.size - HEAD4_BYTES);
    if (limit <= 0) return null;
    const hits = await scanFor(path, { limit, step: TAR_BLOCK, probe: HEAD4_BYTES, targets });
    for (const hit of hits) {
      // 4 KiB names the file; 64 KiB confirms it
      for (const w of registry.byHead4(hit.hash)) {
        if (hit.offset === 0 && w.fp.size > HEAD64_BYTES) continue;
        const [h64] = await hashRanges(path, [{ offset: hit.offset, length: Math.min(HEAD64_BYTES, w.fp.size) }]);
        if (h64 === w.fp.head64) return { kind: 'archive', source: w, offset: hit.offset, bytes: st.size };
      }
    }
    return null;
  } catch {
    // vanished, unreadable, or being replaced: not evidence either way
    return null;
  }
}
