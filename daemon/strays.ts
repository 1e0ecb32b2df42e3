// The subject's business outside its group: processes the table knows as the subject's (or as
// replicas) that run elsewhere now, a host service's child it had started, a process moved out.
import type { ProcessTable } from './process-table.js';
import { readStat } from './sensors/proc/read.js';
import { type Subject, subjectPids } from './subject.js';

/** live processes that are the subject's business outside its group (see RunnerOptions.strays) */
export function strayPids(table: ProcessTable, subject: Subject): number[] {
  const out: number[] = [];
  let inScope: Set<number> | null = null;
  for (const p of table.processes()) {
    if (!p.alive || p.monitor || p.allowed || !(p.subject || p.replica)) continue;
    // one read of the group's member list, only when there is someone to test
    inScope ??= new Set(subjectPids(subject));
    if (inScope.has(p.pid)) continue;
    // the exits of processes outside the group are not traced: the pid must still be that process
    if (readStat(p.pid)?.starttime === p.start) out.push(p.pid);
    else p.alive = false;
  }
  return out;
}
