// `redline audit LOG|FOLDER|GLOB… [--json] [--markdown] [--html FILE]`: sort the files into
// chains (audit/chains.ts: a trial's own log, rotated segments joined in any order), verify each
// chain on its own, rebuild the trials of all, print the report. One broken chain marks its
// trials invalid (chain-broken) and hides no other chain's.
// Exit codes (CONTRACT.md): 0 chain intact, 4 broken or edited (with --pubkey: or a record
// no valid seal covers, beyond an unsealed tail), 2 unreadable.
//
// The logs are streamed: memory stays flat however long they are. Trials are rebuilt only
// from the intact prefix of the chain: records after the first bad one could say anything,
// and an audit must not present them as evidence. A cut-off final line (the daemon was
// killed mid-write, or the file truncated) is reported as such, not as an edit.

import type { KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { type LogLine, parseLine, UnreadableLogError } from '../audit/read.js';
import { DEFAULTS } from '../config/schema.js';
import { natsRecords } from '../outputs/nats-read.js';
import { htmlReport } from '../audit/report-html.js';
import { markdownReport, textReport } from '../audit/report-text.js';
import { type AuditReport, type ChainAudit, type Duplicate, jsonReport } from '../audit/report.js';
import { fileEnds, sortChains } from '../audit/chains.js';
import { combine } from '../audit/combine.js';
import { expandInputs } from '../audit/inputs.js';
import { groupTrials } from '../audit/groups.js';
import { summarize } from '../audit/summary.js';
import { readPublicKey } from '../outputs/seal.js';
import type { Trial } from '../audit/trials.js';
import { auditChains } from '../audit/chain-audit.js';

export interface AuditOptions {
  /** read one host's records from the JetStream stream instead of files */
  nats?: string;
  host?: string;
  natsCreds?: string;
  natsToken?: string;
  natsStream?: string;
  natsPrefix?: string;
  /** verify the seals with this public key (redline keygen's FILE.pub) */
  pubkey?: string;
  /** group the summary by this trial metadata key */
  by?: string;
  json?: boolean;
  markdown?: boolean;
  html?: string;
}

interface TextSink {
  write(chunk: string): unknown;
}

/** the same trial found in two chains (a log copied twice): reported, counted once */
const MAX_DUPLICATES = 1000;

export const EXIT_INTACT = 0;
export const EXIT_UNREADABLE = 2;
export const EXIT_BROKEN = 4;

/** reads, verifies and rebuilds; throws UnreadableLogError */
/** the stream's records of one host, as the lines of a log named nats:STREAM/HOST */
async function* natsLines(opts: AuditOptions & { nats: string; host: string }): AsyncGenerator<LogLine> {
  const file = `nats:${opts.natsStream ?? DEFAULTS.natsStream}/${opts.host}`;
  let n = 0;
  const token = opts.natsToken ?? process.env.REDLINE_NATS_TOKEN;
  const records = natsRecords({
    url: opts.nats,
    stream: opts.natsStream ?? DEFAULTS.natsStream,
    prefix: opts.natsPrefix ?? DEFAULTS.natsPrefix,
    host: opts.host,
    follow: false,
    ...(opts.natsCreds ? { credsFile: opts.natsCreds } : {}),
    ...(token ? { token } : {}),
  });
  for await (const r of records) yield parseLine(file, ++n, r.text);
}

export async function audit(inputs: string[], pub: { key: KeyObject; keyId: string } | null = null, source?: AsyncIterable<LogLine>): Promise<AuditReport> {
  const files = source ? inputs : expandInputs(inputs);
  const order = source ? [files] : sortChains(files.map(fileEnds));
  const chains: ChainAudit[] = [];
  const trials: Trial[] = [];
  const where = new Map<string, number>();
  const duplicates: Duplicate[] = [];
  for (const one of await auditChains(order, pub, source)) {
    const index = chains.length;
    chains.push({ files: one.files, chain: one.chain, seals: one.seals, log: one.log, trials: one.trials.map((t) => t.id) });
    for (const t of one.trials) {
      const first = where.get(t.id);
      if (first === undefined) {
        where.set(t.id, index);
        trials.push(t);
      } else if (duplicates.length < MAX_DUPLICATES) duplicates.push({ trial: t.id, chains: [first, index], files: [chains[first]?.files ?? [], one.files], counted: first });
    }
  }
  return { files, chains, duplicates, ...combine(chains), summary: summarize(trials), trials };
}

export async function auditCommand(files: string[], opts: AuditOptions, out: TextSink = process.stdout, err: TextSink = process.stderr): Promise<number> {
  if (opts.nats) {
    if (!opts.host) {
      err.write('redline audit: --nats needs --host H (a chain is one host\'s log)\n');
      return EXIT_UNREADABLE;
    }
    if (files.length > 0) {
      err.write('redline audit: give log files or --nats, not both\n');
      return EXIT_UNREADABLE;
    }
  } else if (files.length === 0) {
    err.write('usage: redline audit LOG… [--pubkey FILE.pub] [--by KEY] [--json] [--markdown] [--html FILE]\n');
    return EXIT_UNREADABLE;
  }
  let pub: { key: KeyObject; keyId: string } | null = null;
  try {
    if (opts.pubkey) pub = readPublicKey(opts.pubkey);
  } catch (e) {
    err.write(`redline audit: ${(e as Error).message}\n`);
    return EXIT_UNREADABLE;
  }
  let report: AuditReport;
  try {
    const source = opts.nats && opts.host ? natsLines({ ...opts, nats: opts.nats, host: opts.host }) : undefined;
    report = await audit(source ? [`nats:${opts.natsStream ?? DEFAULTS.natsStream}/${opts.host}`] : files, pub, source);
  } catch (e) {
    if (opts.nats && !(e instanceof UnreadableLogError)) {
      err.write(`redline audit: NATS ${opts.nats}: ${(e as Error).message}\n`);
      return EXIT_UNREADABLE;
    }
    if (!(e instanceof UnreadableLogError)) throw e;
    err.write(`redline audit: ${e.message}\n`);
    return EXIT_UNREADABLE;
  }
  if (opts.by) report.summary.groups = groupTrials(report.trials, opts.by);
  out.write(opts.json ? jsonReport(report) : opts.markdown ? markdownReport(report) : textReport(report));
  if (opts.html) {
    try {
      await writeFile(opts.html, htmlReport(report));
    } catch (e) {
      err.write(`redline audit: cannot write ${opts.html}: ${e instanceof Error ? e.message : String(e)}\n`);
      return EXIT_UNREADABLE;
    }
  }
  return report.chain.ok && report.seals.ok !== false ? EXIT_INTACT : EXIT_BROKEN;
}
