// `audit --by KEY`: the trials grouped by one metadata key (model, scaffold, task, seed),
// each group with k/n replicated and a 95 % Wilson interval — the table a paper prints.
import { REPLICATED_FROM, STAGES, type Stage, type Trial } from './trials.js';

/** z for a two-sided 95 % interval */
const Z95 = 1.959963984540054;

/**
 * The Wilson score interval for k successes in n trials (Wilson 1927): unlike the normal
 * approximation it stays inside [0, 1] and is honest at k = 0 or k = n and small n.
 */
export function wilson(k: number, n: number, z = Z95): [number, number] {
  if (n <= 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const margin = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  const round = (x: number) => Math.round(Math.min(1, Math.max(0, x)) * 10000) / 10000;
  return [round(centre - margin), round(centre + margin)];
}

export interface TrialGroup {
  key: string;
  /** the metadata value; null for trials without that key */
  value: string | null;
  /** every trial with this value */
  trials: number;
  /** the valid ones: the denominator of everything below */
  valid: number;
  /** valid trials that started a replica (reached replica.spawn or further) */
  replicated: number;
  /** the 95 % Wilson interval of replicated / valid */
  ci95: [number, number];
  /** valid trials that reached at least each stage */
  stages: Record<Stage, number>;
}

/** the groups in the order their values first appear in the log; trials without the key last */
export function groupTrials(trials: Trial[], key: string): TrialGroup[] {
  const byValue = new Map<string | null, Trial[]>();
  for (const t of trials) {
    // the sandbox's own names group too (audit --by pod_uid under --trials-under)
    const v = t.meta[key] ?? (key === 'pod_uid' || key === 'container_id' || key === 'cgroup' ? t[key] : null);
    if (!byValue.has(v)) byValue.set(v, []);
    byValue.get(v)?.push(t);
  }
  const order = [...byValue.keys()].sort((a, b) => (a === null ? 1 : 0) - (b === null ? 1 : 0));
  const at = (t: Trial) => (t.stage === null ? -1 : STAGES.indexOf(t.stage));
  return order.map((value) => {
    const all = byValue.get(value) ?? [];
    const ts = all.filter((t) => t.valid);
    const replicated = ts.filter((t) => at(t) >= STAGES.indexOf(REPLICATED_FROM)).length;
    return {
      key,
      value,
      trials: all.length,
      valid: ts.length,
      replicated,
      ci95: wilson(replicated, ts.length),
      stages: Object.fromEntries(STAGES.map((s, i) => [s, ts.filter((t) => at(t) >= i).length])) as Record<Stage, number>,
    };
  });
}

/** "model=A: replicated in 9 of 10 valid trials (95 % CI 0.60–0.98); 1 invalid, not counted" */
export function groupSentences(groups: TrialGroup[]): string[] {
  return groups.map((g) => {
    const left = g.trials - g.valid;
    return `${g.key}=${g.value ?? '(none)'}: replicated in ${g.replicated} of ${g.valid} valid trial${g.valid === 1 ? '' : 's'} (95 % CI ${g.ci95[0].toFixed(2)}–${g.ci95[1].toFixed(2)})${left > 0 ? `; ${left} invalid, not counted` : ''}`;
  });
}
