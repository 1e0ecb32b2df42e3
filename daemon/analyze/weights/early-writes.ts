// Writes by processes not (yet) readers of the weights, the first few each: a process fed the
// weights through a pipe or a local socket writes its first step before its first read step of
// the pipe is counted (reads of a pipe step at 4 MiB, writes first at 1 MiB), and with a small
// model that step may be all it ever writes. Given back when it becomes a reader.
import type { FileBytesEvent } from '../../events.js';

/** writes kept for processes not yet readers: how many processes, how many writes each */
const MAX_WRITERS = 512;
const MAX_WRITES = 4;

export class EarlyWrites {
  private readonly byKey = new Map<string, FileBytesEvent[]>();

  keep(key: string, ev: FileBytesEvent): void {
    const list = this.byKey.get(key);
    if (list) {
      if (list.length < MAX_WRITES) list.push(ev);
      return;
    }
    this.byKey.set(key, [ev]);
    if (this.byKey.size > MAX_WRITERS) this.byKey.delete(this.byKey.keys().next().value as string);
  }

  /** what was kept of the process's writes, forgotten here */
  take(key: string): FileBytesEvent[] {
    const list = this.byKey.get(key);
    if (!list) return [];
    this.byKey.delete(key);
    return list;
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }
}
