// The evidence at the freeze: the subject's process tree with command lines.
import { readCmdline, readStat } from '../sensors/proc/read.js';
import { type Subject, subjectPids } from '../subject.js';
import { elapsed } from './result.js';

export interface SnapshotProcess {
  pid: number;
  ppid: number;
  state: string;
  comm: string;
  cmdline: string[];
}

export interface Snapshot {
  processes: SnapshotProcess[];
  latency_ms: number;
}

export function snapshot(s: Subject): Snapshot {
  const t0 = performance.now();
  const processes: SnapshotProcess[] = [];
  for (const pid of subjectPids(s)) {
    const st = readStat(pid);
    if (!st) continue;
    processes.push({ pid, ppid: st.ppid, state: st.state, comm: st.comm, cmdline: readCmdline(pid) ?? [] });
  }
  processes.sort((a, b) => a.pid - b.pid);
  return { processes, latency_ms: elapsed(t0) };
}
