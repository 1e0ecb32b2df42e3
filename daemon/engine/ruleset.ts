// The ruleset: compiled rules indexed by event type, with per-rule de-duplication so one
// noisy process cannot flood the log. Pure: no I/O.
import type { EventType } from '../events.js';
import type { Enriched } from '../process.js';
import type { CompiledRule } from './compiler.js';
import { type CelContext, celContext, fieldValue } from './context.js';

export interface Match {
  rule: CompiledRule;
  ctx: CelContext;
  summary: string;
  /** matches of this rule and key that were folded into the previous alert */
  suppressed: number;
}

interface DedupEntry {
  until: number;
  suppressed: number;
}

export class Ruleset {
  private readonly byType = new Map<EventType, CompiledRule[]>();
  private readonly dedup = new Map<string, DedupEntry>();
  /** conditions that threw at run time (a bug in a rule, not in the event) */
  evalErrors = 0;
  lastEvalError = '';

  constructor(readonly rules: readonly CompiledRule[]) {
    for (const r of rules) {
      for (const t of r.events) {
        const list = this.byType.get(t) ?? [];
        list.push(r);
        this.byType.set(t, list);
      }
    }
  }

  has(type: EventType): boolean {
    return this.byType.has(type);
  }

  evaluate(e: Enriched, now = e.event.time): Match[] {
    const rules = this.byType.get(e.event.type);
    if (!rules) return [];
    const ctx = celContext(e);
    const out: Match[] = [];
    for (const rule of rules) {
      if (!this.test(rule.condition, ctx, rule.id)) continue;
      if (rule.exceptions.some((x) => this.test(x.condition, ctx, rule.id))) continue;
      let suppressed = 0;
      if (rule.dedup) {
        const key = `${rule.id}\u0000${rule.dedup.by.map((p) => String(fieldValue(ctx, p))).join('\u0000')}`;
        const entry = this.dedup.get(key);
        if (entry && now < entry.until) {
          entry.suppressed++;
          continue;
        }
        suppressed = entry?.suppressed ?? 0;
        this.dedup.set(key, { until: now + rule.dedup.windowMs, suppressed: 0 });
        if (this.dedup.size > 10_000) this.prune(now);
      }
      let summary: string;
      try {
        summary = rule.summary(ctx);
      } catch (err) {
        summary = `${rule.description} (summary failed: ${(err as Error).message})`;
      }
      out.push({ rule, ctx, summary, suppressed });
    }
    return out;
  }

  /** counts still folded when a trial ends, so the log says how much was not repeated */
  pendingSuppressed(): number {
    let n = 0;
    for (const e of this.dedup.values()) n += e.suppressed;
    return n;
  }

  private test(cond: CompiledRule['condition'], ctx: CelContext, id: string): boolean {
    try {
      return cond(ctx) === true;
    } catch (err) {
      this.evalErrors++;
      this.lastEvalError = `${id}: ${(err as Error).message.split('\n')[0]}`;
      return false;
    }
  }

  private prune(now: number): void {
    for (const [k, e] of this.dedup) if (e.until <= now && e.suppressed === 0) this.dedup.delete(k);
  }
}
