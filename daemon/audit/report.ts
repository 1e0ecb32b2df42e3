// What one audit found, as every report format receives it; and the `--json` form, whose
// schema is documented in README.md ("redline audit --json") and versioned by `schema`.
import type { SealsResult } from './seals.js';
import type { LogShape } from './shape.js';
import type { Summary } from './summary.js';
import type { Trial } from './trials.js';
import type { VerifyResult } from './verify.js';

export const JSON_SCHEMA = 'redline-audit/1';

export interface AuditReport {
  files: string[];
  chain: VerifyResult;
  seals: SealsResult;
  shape: LogShape;
  summary: Summary;
  trials: Trial[];
}

export function jsonReport(r: AuditReport): string {
  return `${JSON.stringify({ schema: JSON_SCHEMA, files: r.files, chain: r.chain, seals: r.seals, log: r.shape, summary: r.summary, trials: r.trials }, null, 2)}\n`;
}
