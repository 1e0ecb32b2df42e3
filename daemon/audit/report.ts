// What one audit found, as every report format receives it; and the `--json` form, whose
// schema is documented in README.md ("redline audit --json") and versioned by `schema`.
import type { SealsResult } from './seals.js';
import type { LogShape } from './shape.js';
import type { Summary } from './summary.js';
import type { Trial } from './trials.js';
import type { VerifyResult } from './verify.js';

export const JSON_SCHEMA = 'redline-audit/1';

/** one chain: a trial's log, or a log and its rotated segments, verified on its own */
export interface ChainAudit {
  /** oldest first */
  files: string[];
  chain: VerifyResult;
  seals: SealsResult;
  log: LogShape;
  /** the ids of the trials rebuilt from it */
  trials: string[];
}

/** a trial found in two chains: counted once, from the first */
export interface Duplicate {
  trial: string;
  /** indexes into `chains` */
  chains: [number, number];
  files: [string[], string[]];
  counted: number;
}

export interface AuditReport {
  files: string[];
  chains: ChainAudit[];
  duplicates: Duplicate[];
  /** all chains together: ok when every one is (a single chain: its own result) */
  chain: VerifyResult;
  seals: SealsResult;
  shape: LogShape;
  summary: Summary;
  trials: Trial[];
}

export function jsonReport(r: AuditReport): string {
  return `${JSON.stringify({ schema: JSON_SCHEMA, files: r.files, chain: r.chain, seals: r.seals, log: r.shape, chains: r.chains, duplicates: r.duplicates, summary: r.summary, trials: r.trials }, null, 2)}\n`;
}
