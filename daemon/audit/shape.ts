// How the log ends and whether the daemon died along the way: a daemon stops cleanly with
// a `{kind: "daemon", phase: "stop"}` record (and, with --sign-key, the seal after it). A log whose last record is anything else was
// cut short or outlived its daemon; a daemon start that follows anything but a stop is a
// restart after the daemon died. (The chain cannot tell records cut off the end of a log:
// compare the head hash with the one the websocket heartbeats carried off the host.)
import type { VerifiedRecord } from './verify.js';

export interface RecordRef {
  seq: number;
  time: number;
  kind: string;
  phase?: string;
}

export interface LogShape {
  /** the last record is the daemon's own stop record */
  clean_close: boolean;
  last: RecordRef | null;
  daemon_starts: number;
  /** daemon starts with no stop before them: the daemon had died */
  unclean_restarts: RecordRef[];
  /** the final line was cut off mid-record (the daemon was killed while writing, or the file truncated) */
  torn_tail: { file: string; line: number } | null;
}

function ref(r: VerifiedRecord): RecordRef {
  return { seq: r.seq, time: r.time, kind: r.kind, ...(typeof r.phase === 'string' ? { phase: r.phase } : {}) };
}

export class ShapeTracker {
  #last: VerifiedRecord | null = null;
  #starts = 0;
  #unclean: RecordRef[] = [];

  push(r: VerifiedRecord): void {
    // a seal signs what came before it: the log's shape is that of the records it seals
    if (r.kind === 'seal') return;
    if (r.kind === 'daemon' && r.phase === 'start') {
      this.#starts++;
      const prev = this.#last;
      if (prev && !(prev.kind === 'daemon' && prev.phase === 'stop') && this.#unclean.length < 1000) this.#unclean.push(ref(r));
    }
    this.#last = r;
  }

  result(torn: { file: string; line: number } | null): LogShape {
    const last = this.#last;
    return {
      clean_close: torn === null && last !== null && last.kind === 'daemon' && last.phase === 'stop',
      last: last ? ref(last) : null,
      daemon_starts: this.#starts,
      unclean_restarts: this.#unclean,
      torn_tail: torn,
    };
  }
}

/** the plain sentence an auditor reads about the log's end */
export function shapeNotes(s: LogShape): string[] {
  const notes: string[] = [];
  if (s.torn_tail) notes.push(`the log ends in a cut-off line (${s.torn_tail.file} line ${s.torn_tail.line}): the daemon was killed while writing, or the file was truncated`);
  else if (s.last && !s.clean_close) {
    notes.push(`the log ends without a clean close: its last record (seq ${s.last.seq}, ${s.last.kind}${s.last.phase ? ` ${s.last.phase}` : ''}, ${new Date(s.last.time).toISOString()}) is not the daemon's stop record — the daemon died or is still running, or the log was cut short`);
  }
  for (const r of s.unclean_restarts) notes.push(`the daemon started again at seq ${r.seq} (${new Date(r.time).toISOString()}) without having stopped cleanly: it had died`);
  return notes;
}
