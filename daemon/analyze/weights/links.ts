// A link the subject made (hard or symbolic) to the weights, or to a copy: a copy of them
// under another name. A file written with no name (O_TMPFILE) and named by linkat is the
// same copy, named now.
import type { LinkEvent, WeightsCopyEvent } from '../../events.js';
import type { FileStat } from '../../enrich/paths.js';
import type { WeightRegistry } from '../../sensors/weights/registry.js';
import type { CandidateCopies } from './candidates.js';

/** what the link at `path` (stat() said `st`) made of the weights, or null: not theirs */
export function linkedCopy(ev: LinkEvent, path: string, st: FileStat, registry: WeightRegistry, candidates: CandidateCopies): WeightsCopyEvent | null {
  // a file written with no name (O_TMPFILE) and named by linkat: the same copy, named now
  const c = candidates.get(st.dev, st.ino);
  if (c?.path.endsWith(' (deleted)')) c.path = path;
  const w = registry.byInode(st.dev, st.ino);
  if (!w) return null;
  if (w.path.endsWith(' (deleted)')) {
    registry.updatePath(st.dev, st.ino, path);
    return {
      type: 'weights_copy', time: ev.time, pid: ev.pid, comm: ev.comm, path, weight: w.source ?? w.path, generation: w.generation,
      match: w.match ?? 'full', bytes: st.size, offset: 0, seen_by: 'ebpf',
    };
  }
  return {
    type: 'weights_copy', time: ev.time, pid: ev.pid, comm: ev.comm, path, weight: w.path, generation: w.generation + 1,
    match: ev.kind === 'sym' ? 'symlink' : 'hardlink', bytes: st.size, offset: 0, seen_by: 'ebpf',
  };
}
