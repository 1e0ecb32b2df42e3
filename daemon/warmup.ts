// The first alert of a trial is usually the one that matters, and a cold pipeline takes
// ~6 ms longer for it (lazy compilation in V8 and in the CEL library). Before the subject
// starts, run synthetic events through a throwaway copy of the pipeline: same code, its own
// table, dedup state and a sink that writes nowhere.
import { Ruleset } from './engine/ruleset.js';
import type { SensorEvent } from './events.js';
import { AuditLog } from './outputs/audit-log.js';
import { Pipeline } from './pipeline.js';
import { ProcessTable } from './process-table.js';

// pids above the kernel's pid_max never exist
const FAKE = 5_000_000;

export function warmUp(ruleset: Ruleset, rounds = 3): void {
  for (let i = 0; i < rounds; i++) {
    const table = new ProcessTable({ isSubject: () => false, keepExitedMs: 0 });
    const sink = AuditLog.open(`/nonexistent/redline-warmup-${process.pid}`, { write: () => undefined });
    const p = new Pipeline({ table, ruleset: new Ruleset(ruleset.rules), subject: { kind: 'uid', uid: 4294967294 }, sink, mode: 'observe' });
    const t = Date.now();
    const events: SensorEvent[] = [
      { type: 'fork', time: t, pid: FAKE, child_pid: FAKE + 1, comm: 'sh' },
      { type: 'exec', time: t, pid: FAKE + 1, comm: 'sh', filename: '/bin/sh' },
      { type: 'signal', time: t, pid: FAKE + 1, syscall: 'kill', target_pid: process.pid, sig: 0 },
      { type: 'signal', time: t, pid: FAKE + 1, syscall: 'kill', target_pid: 1, sig: 18 },
      { type: 'signal', time: t, pid: FAKE + 1, syscall: 'kill', target_pid: -1, sig: 18 },
      { type: 'setsid', time: t, pid: FAKE + 1, comm: 'sh' },
      { type: 'reparent', time: t, pid: FAKE + 1, comm: 'sh', old_ppid: FAKE, new_ppid: 1 },
      { type: 'open', time: t, pid: FAKE + 1, comm: 'sh', fd: 3, flags: 577, dfd: -100, filename: '/nonexistent/x', path: '/nonexistent/x', write: true, monitor_file: true },
      { type: 'weights_open', time: t, pid: FAKE + 1, comm: 'sh', path: '/nonexistent/w', weight: '/nonexistent/w', generation: 0, write: false },
      { type: 'weights_copy', time: t, pid: FAKE + 1, comm: 'sh', path: '/nonexistent/c', weight: '/nonexistent/w', generation: 1, match: 'partial', bytes: 1 << 20, offset: 0, seen_by: 'ebpf' },
      { type: 'weights_load', time: t, pid: FAKE + 1, comm: 'sh', path: '/nonexistent/w', weight: '/nonexistent/w', generation: 0, how: 'mmap', bytes: 1 << 20, share: 1 },
      { type: 'file_bytes', time: t, pid: FAKE + 1, comm: 'sh', op: 'read', write: false, fd: -1, bytes: 1 << 20, ino: 1, dev: 1, size: 8 << 20, subject: true, socket: false, pipe: false },
      { type: 'exit', time: t, pid: FAKE + 1, comm: 'sh' },
    ];
    for (const ev of events) p.ingest(ev);
    sink.close();
  }
}
