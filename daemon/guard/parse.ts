// Pure parser of redline-guard's stdout (kernel/guard.c): its `K` records, its lost count, and
// the answers to the lists it is given.
import type { AttemptCall, AttemptEvent } from '../events.js';

export type GuardLine =
  | { kind: 'event'; event: AttemptEvent }
  | { kind: 'lost'; count: number }
  | { kind: 'answer'; ok: boolean; text: string }
  | { kind: 'error'; message: string }
  | { kind: 'ignored' };

const WHAT: Record<string, AttemptCall> = { ptrace: 'ptrace', bpf: 'bpf', module: 'finit_module', move: 'cgroup_move', cgroup_own: 'cgroup_kill' };

const int = (s: string | undefined): number | null => (s !== undefined && /^-?\d+$/.test(s) ? Number(s) : null);

/** K ns pid tid what refused target monitor arg suppressed name comm */
export function parseGuardLine(line: string, clock: (ns: bigint) => number): GuardLine {
  if (line === '') return { kind: 'ignored' };
  const lost = /^Lost (\d+) events$/.exec(line);
  if (lost) return { kind: 'lost', count: Number(lost[1]) };
  if (line.startsWith('ok ')) return { kind: 'answer', ok: true, text: line.slice(3) };
  if (line.startsWith('error ')) return { kind: 'answer', ok: false, text: line.slice(6) };
  const f = line.split('\t');
  const pid = int(f[2]);
  const tid = int(f[3]);
  const refused = int(f[5]);
  const target = int(f[6]);
  const arg = int(f[8]);
  const suppressed = int(f[9]);
  const what = WHAT[f[4] ?? ''];
  if (f[0] !== 'K' || f.length < 12 || !/^\d+$/.test(f[1] ?? '') || pid === null || tid === null || !what || refused === null || target === null || arg === null || suppressed === null) {
    return { kind: 'error', message: `malformed guard line: ${JSON.stringify(line)}` };
  }
  const ev: AttemptEvent = { type: 'attempt', time: clock(BigInt(f[1] as string)), pid, tid, syscall: what, comm: f.slice(11).join('\t') };
  if (target > 0) ev.target_pid = target;
  if (what === 'ptrace' || what === 'bpf' || what === 'cgroup_move' || what === 'cgroup_kill') ev.request = arg;
  if (refused === 1) ev.refused_by = 'lsm';
  else ev.would_refuse = what !== 'cgroup_kill';
  if (suppressed > 0) ev.suppressed = suppressed;
  if (f[10]) ev.file = f[10];
  return { kind: 'event', event: ev };
}
