// Many chains as one answer: the chain, seals and log shape of the whole audit. A single chain
// is reported as itself; several are ok only when each is, and the first that fails is named
// with its file (each chain's own result stays in the report's `chains`).
import type { ChainAudit } from './report.js';
import type { SealsResult } from './seals.js';
import type { LogShape } from './shape.js';
import type { VerifyResult } from './verify.js';

function chainOf(chains: readonly ChainAudit[]): VerifyResult {
  const records = chains.reduce((n, c) => n + c.chain.records, 0);
  const bad = chains.find((c) => !c.chain.ok);
  if (!bad) return { ok: true, records, first_bad_seq: null };
  const broken = chains.filter((c) => !c.chain.ok).length;
  const where = bad.chain.bad_at ? bad.chain.bad_at.file : (bad.files[0] ?? '?');
  return {
    ok: false,
    records,
    first_bad_seq: bad.chain.first_bad_seq,
    reason: `${broken} of ${chains.length} chains broken; the first, in ${where}: ${bad.chain.reason ?? 'unknown reason'}`,
    ...(bad.chain.bad_at ? { bad_at: bad.chain.bad_at } : {}),
  };
}

function sealsOf(chains: readonly ChainAudit[]): SealsResult {
  const all = chains.map((c) => c.seals);
  const checked = all.some((s) => s.checked);
  const out: SealsResult = { count: all.reduce((n, s) => n + s.count, 0), key_ids: [...new Set(all.flatMap((s) => s.key_ids))].slice(0, 16), checked };
  if (!checked) return out;
  const failed = chains.find((c) => c.seals.ok === false);
  out.key_id = all[0]?.key_id ?? '';
  out.valid = all.reduce((n, s) => n + (s.valid ?? 0), 0);
  out.other_keys = all.reduce((n, s) => n + (s.other_keys ?? 0), 0);
  out.ok = failed === undefined;
  if (failed) {
    out.problem = `${failed.files.join(', ')}: ${failed.seals.problem ?? 'not covered'}`;
    out.first_uncovered = failed.seals.first_uncovered ?? null;
  }
  return out;
}

function shapeOf(chains: readonly ChainAudit[]): LogShape {
  const last = chains[chains.length - 1]?.log.last ?? null;
  return {
    clean_close: chains.every((c) => c.log.clean_close),
    last,
    daemon_starts: chains.reduce((n, c) => n + c.log.daemon_starts, 0),
    unclean_restarts: chains.flatMap((c) => c.log.unclean_restarts).slice(0, 1000),
    torn_tail: chains.find((c) => c.log.torn_tail)?.log.torn_tail ?? null,
  };
}

export function combine(chains: readonly ChainAudit[]): { chain: VerifyResult; seals: SealsResult; shape: LogShape } {
  const only = chains.length === 1 ? chains[0] : undefined;
  if (only) return { chain: only.chain, seals: only.seals, shape: only.log };
  return { chain: chainOf(chains), seals: sealsOf(chains), shape: shapeOf(chains) };
}
