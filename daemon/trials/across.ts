// Under --trials-under every sandbox's process is "a subject"; a signal from one sandbox to
// another still reaches outside the sender's own tree: the rules see such a target as no
// subject (a copy: the table's entry is left as it is).
import type { Enriched, ProcInfo } from '../process.js';
import type { TrialSet } from './trial-set.js';

export function acrossTrials(trials: Pick<TrialSet, 'of'>, e: Enriched): void {
  if (e.targets.length === 0) return;
  const mine = trials.of(e.proc);
  const outside = (t: ProcInfo): ProcInfo => (t.subject && trials.of(t) !== mine ? { ...t, subject: false } : t);
  e.targets = e.targets.map(outside);
  if (e.target) e.target = e.targets.find((x) => x.pid === e.target?.pid) ?? outside(e.target);
}
