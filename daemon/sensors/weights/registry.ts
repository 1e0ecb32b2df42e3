// The registered weights — the originals from --weights and every copy found since — by
// inode and by the hashes a candidate is compared with.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Fingerprint, fingerprint } from './fingerprint.js';

export type MatchKind = 'full' | 'partial' | 'hardlink' | 'symlink' | 'archive';

export interface WeightFile {
  path: string;
  fp: Fingerprint;
  /** 0 for the originals, n + 1 for a copy of a generation-n file */
  generation: number;
  /** what it was copied from */
  source?: string;
  match?: MatchKind;
  registeredAt: number;
}

// In a folder, a file is a weight file when its header says so, or when it is big enough
// that only tensors would be (raw .bin shards). README.md, config.json and tokenizer files
// are not weights: reading them is ordinary work.
const BIG_ENOUGH = 64 << 20;
// a file that starts with zeros (sparse, or raw tensors padded with zeros) would "match" any
// other run of zeros: its head hashes are not used to recognise copies
const ZERO_HEADS = new Set([
  createHash('sha256').update(Buffer.alloc(1 << 20)).digest('hex'),
  createHash('sha256').update(Buffer.alloc(4 << 10)).digest('hex'),
]);
const MAX_DEPTH = 8;

export class WeightRegistry {
  private readonly inodes = new Map<string, WeightFile>();
  private readonly heads = new Map<string, WeightFile[]>();
  private readonly heads4 = new Map<string, WeightFile[]>();

  async registerPaths(paths: readonly string[]): Promise<{ files: WeightFile[]; skipped: { path: string; reason: string }[] }> {
    const files: WeightFile[] = [];
    const skipped: { path: string; reason: string }[] = [];
    const visit = async (path: string, explicit: boolean, depth: number): Promise<void> => {
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(path);
      } catch (err) {
        skipped.push({ path, reason: (err as NodeJS.ErrnoException).code ?? String(err) });
        return;
      }
      if (st.isDirectory()) {
        if (depth >= MAX_DEPTH) return void skipped.push({ path, reason: 'too deep' });
        for (const name of readdirSync(path).sort()) await visit(join(path, name), false, depth + 1);
        return;
      }
      if (!st.isFile() && !(explicit && st.isSymbolicLink())) return;
      try {
        const fp = await fingerprint(path);
        if (!explicit && fp.format === 'unknown' && fp.size < BIG_ENOUGH) return void skipped.push({ path, reason: 'not a weight file (format unknown, under 64 MiB)' });
        files.push(this.add({ path, fp, generation: 0, registeredAt: Date.now() }));
      } catch (err) {
        skipped.push({ path, reason: (err as Error).message });
      }
    };
    for (const p of paths) await visit(p, true, 0);
    return { files, skipped };
  }

  private add(w: WeightFile): WeightFile {
    const key = `${w.fp.dev}:${w.fp.ino}`;
    const old = this.inodes.get(key);
    if (old) {
      this.remove(this.heads, old.fp.head, old);
      this.remove(this.heads4, old.fp.head4, old);
    }
    this.inodes.set(key, w);
    if (!ZERO_HEADS.has(w.fp.head)) this.push(this.heads, w.fp.head, w);
    if (!ZERO_HEADS.has(w.fp.head4)) this.push(this.heads4, w.fp.head4, w);
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

  byHead(head: string): WeightFile[] {
    return this.heads.get(head) ?? [];
  }

  byHead4(head4: string): WeightFile[] {
    return this.heads4.get(head4) ?? [];
  }

  allHead4(): string[] {
    return [...this.heads4.keys()];
  }

  files(): WeightFile[] {
    return [...this.inodes.values()];
  }

  /** a copy becomes a weight file itself, with its lineage (a copy of a copy is a copy) */
  addCopy(path: string, fp: Fingerprint, source: WeightFile, match: MatchKind): WeightFile {
    return this.add({ path, fp, generation: source.generation + 1, source: source.path, match, registeredAt: Date.now() });
  }

  updatePath(dev: number, ino: number, path: string): void {
    const w = this.byInode(dev, ino);
    if (w) w.path = path;
  }
}
