// The registered weights — the originals from --weights and every copy found since — by
// inode and by the hashes a candidate is compared with.
import { createHash } from 'node:crypto';
import { type Stats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Fingerprint, fingerprint, HEAD4_BYTES, HEAD64_BYTES, type ScanTarget } from './fingerprint.js';

/** how a registered copy came to be weights: by content (full, partial, archive), by link, or derived (rewritten from the bytes read: tracker.ts registerDerived) */
export type MatchKind = 'full' | 'partial' | 'hardlink' | 'symlink' | 'archive' | 'derived';

export interface WeightFile {
  path: string;
  fp: Fingerprint;
  /** 0 for the originals, n + 1 for a copy of a generation-n file */
  generation: number;
  /** the path it was copied from */
  source?: string;
  match?: MatchKind;
  registeredAt: number;
}

export interface Skipped {
  path: string;
  reason: string;
}

// In a folder, a file is a weight file when its header says so, or when it is big enough
// that only tensors would be (raw .bin shards, formats not recognised). README.md,
// config.json, tokenizer files and the serving script are not weights: reading them is
// ordinary work, and alerting on it would bury the alerts that matter.
export const BIG_ENOUGH = 64 << 20;
// a file that starts with zeros (sparse, or raw tensors padded with zeros) would "match" any
// other run of zeros: such head hashes are not used to recognise copies
const ZERO_HEAD = createHash('sha256').update(Buffer.alloc(1 << 20)).digest('hex');
const ZERO_HEAD4 = createHash('sha256').update(Buffer.alloc(HEAD4_BYTES)).digest('hex');
export const MAX_DEPTH = 8;
// fingerprints in flight while registering: enough to keep the worker pool busy
const CONCURRENCY = 8;

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String((err as Error).message ?? err);

export class WeightRegistry {
  private readonly inodes = new Map<string, WeightFile>();
  private readonly heads = new Map<string, WeightFile[]>();
  private readonly heads64 = new Map<string, WeightFile[]>();
  private targets: ScanTarget[] | null = null;
  private sizes: Set<number> | null = null;

  /**
   * Explicit paths are always registered (a symlink given by name is followed). Folders are
   * walked to depth 8 without entering symlinked folders (no loops, no escaping to `/`);
   * a symlinked *file* in a folder is registered under its target's real path, as Hugging
   * Face snapshots link each file to a blob. I/O failures become `skipped`, never throws.
   */
  async registerPaths(paths: readonly string[]): Promise<{ files: WeightFile[]; skipped: Skipped[] }> {
    const found: { path: string; explicit: boolean }[] = [];
    const skipped: Skipped[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth >= MAX_DEPTH) return void skipped.push({ path: dir, reason: `deeper than ${MAX_DEPTH} levels` });
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch (err) {
        return void skipped.push({ path: dir, reason: code(err) });
      }
      for (const name of names) {
        const p = join(dir, name);
        try {
          const st = await lstat(p);
          if (st.isDirectory()) await walk(p, depth + 1);
          else if (st.isFile()) found.push({ path: p, explicit: false });
          else if (st.isSymbolicLink() && (await stat(p)).isFile()) found.push({ path: await realpath(p), explicit: false });
        } catch (err) {
          skipped.push({ path: p, reason: code(err) });
        }
      }
    };
    for (const p of paths) {
      let st: Stats;
      try {
        st = await stat(p);
      } catch (err) {
        skipped.push({ path: p, reason: code(err) });
        continue;
      }
      if (st.isDirectory()) await walk(p, 0);
      else if (st.isFile()) found.push({ path: p, explicit: true });
      else skipped.push({ path: p, reason: 'not a regular file' });
    }

    const fps = new Array<Fingerprint | Error>(found.length);
    let next = 0;
    const runner = async (): Promise<void> => {
      for (let i = next++; i < found.length; i = next++) {
        const f = found[i] as { path: string };
        fps[i] = await fingerprint(f.path).catch((err: unknown) => new Error(code(err)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, found.length) }, runner));

    const files: WeightFile[] = [];
    found.forEach(({ path, explicit }, i) => {
      const fp = fps[i];
      if (!fp || fp instanceof Error) return void skipped.push({ path, reason: fp?.message ?? 'not read' });
      if (!explicit && fp.format === 'unknown' && fp.size < BIG_ENOUGH) return void skipped.push({ path, reason: 'not a weight file (format unknown, under 64 MiB)' });
      // one file named twice (a folder and a file in it, hard links, symlinks): registered once
      const same = this.byInode(fp.dev, fp.ino);
      if (same) return void skipped.push({ path, reason: `same file as ${same.path}` });
      files.push(this.add({ path, fp, generation: 0, registeredAt: Date.now() }));
    });
    return { files, skipped };
  }

  private add(w: WeightFile): WeightFile {
    const key = `${w.fp.dev}:${w.fp.ino}`;
    const old = this.inodes.get(key);
    if (old) {
      this.remove(this.heads, old.fp.head, old);
      this.remove(this.heads64, old.fp.head64, old);
    }
    this.inodes.set(key, w);
    if (w.fp.head !== ZERO_HEAD) this.push(this.heads, w.fp.head, w);
    if (w.fp.head4 !== ZERO_HEAD4 && w.fp.size >= HEAD4_BYTES) this.push(this.heads64, w.fp.head64, w);
    this.targets = null;
    this.sizes = null;
    return w;
  }

  private push(m: Map<string, WeightFile[]>, k: string, w: WeightFile): void {
    const list = m.get(k);
    if (list) list.push(w);
    else m.set(k, [w]);
  }

  private remove(m: Map<string, WeightFile[]>, k: string, w: WeightFile): void {
    const list = m.get(k)?.filter((x) => x !== w);
    if (list && list.length > 0) m.set(k, list);
    else m.delete(k);
  }

  byInode(dev: number, ino: number): WeightFile | undefined {
    return this.inodes.get(`${dev}:${ino}`);
  }

  /** every registered file whose first MiB hashes to `head` (an original and its copies) */
  byHead(head: string): WeightFile[] {
    return this.heads.get(head) ?? [];
  }

  byHead64(head64: string): WeightFile[] {
    return this.heads64.get(head64) ?? [];
  }

  /** is any registered file exactly this size? (a cheap first test of a file nobody was seen writing) */
  hasSize(size: number): boolean {
    this.sizes ??= new Set(this.files().map((w) => w.fp.size));
    return this.sizes.has(size);
  }

  bySize(size: number): WeightFile[] {
    return this.files().filter((w) => w.fp.size === size);
  }

  /** what an archive scan looks for: each distinct first 64 KiB once (copies share it) */
  archiveTargets(): ScanTarget[] {
    if (this.targets) return this.targets;
    this.targets = [...this.heads64.values()].flatMap((list) => {
      const fp = list[0]?.fp;
      if (!fp) return [];
      const lead = Buffer.from(fp.lead, 'hex');
      if (lead.length < 4) return [];
      return [{ key: lead.readUInt32LE(0), lead, len4: Math.min(fp.size, HEAD4_BYTES), head4: fp.head4, len64: Math.min(fp.size, HEAD64_BYTES), head64: fp.head64 }];
    });
    return this.targets;
  }

  files(): WeightFile[] {
    return [...this.inodes.values()];
  }

  /** is `path` one of the originals (not a copy found since)? (no array built: asked on each write open) */
  isOriginalPath(path: string): boolean {
    for (const w of this.inodes.values()) if (w.generation === 0 && w.path === path) return true;
    return false;
  }

  /** a copy becomes a weight file itself, with its lineage (a copy of a copy is a copy) */
  addCopy(path: string, fp: Fingerprint, source: WeightFile, match: MatchKind): WeightFile {
    return this.add({ path, fp, generation: source.generation + 1, source: source.path, match, registeredAt: Date.now() });
  }

  /** a rename keeps the inode: the file is the same weights under its new name */
  updatePath(dev: number, ino: number, path: string): WeightFile | undefined {
    const w = this.byInode(dev, ino);
    if (w) w.path = path;
    return w;
  }
}
