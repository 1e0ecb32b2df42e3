// One chain verified and its trials rebuilt (the files oldest first), and many chains at once:
// chains are independent, so a study of many trial logs is audited on every core, each worker
// taking whole chains (chain-worker.ts) and handing back their results, in the order given.
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type LogLine, readLogLines, UnreadableLogError } from './read.js';
import type { ChainAudit } from './report.js';
import { SealChecker } from './seals.js';
import { ShapeTracker } from './shape.js';
import { type Trial, TrialBuilder } from './trials.js';
import { ChainVerifier } from './verify.js';

export type ChainResult = Omit<ChainAudit, 'trials'> & { trials: Trial[] };
type Pub = { key: KeyObject; keyId: string } | null;

/** below this many chains one thread does it all (a worker costs ~50 ms to start) */
const PARALLEL_FROM = 8;
const MAX_WORKERS = 8;

/** one chain's files (oldest first) verified and its trials rebuilt */
export async function auditChain(files: string[], pub: Pub, source?: AsyncIterable<LogLine>): Promise<ChainResult> {
  const verifier = new ChainVerifier();
  const builder = new TrialBuilder();
  const shape = new ShapeTracker();
  const seals = new SealChecker(pub);
  // one line of lookahead: only the very last line may be a cut-off record
  let held: LogLine | null = null;
  const take = (line: LogLine) => {
    const rec = verifier.push(line);
    if (!rec) {
      const broken = verifier.brokenAt();
      if (broken !== null && line.parsed) builder.afterBreak(line.value, broken);
      return;
    }
    builder.add(rec);
    shape.push(rec);
    seals.push(rec);
  };
  for await (const line of source ?? readLogLines(files)) {
    if (held) take(held);
    held = line;
  }
  let torn: { file: string; line: number } | null = null;
  if (held) {
    const last = files[files.length - 1];
    if (!held.parsed && held.file === last) torn = { file: held.file, line: held.line };
    else take(held);
  }
  const chain = verifier.result();
  const trials = builder.trials(chain.ok ? null : chain.first_bad_seq, chain.first_seq ?? 0);
  return { files, chain, seals: seals.result(), log: shape.result(torn), trials };
}


/** what a worker is given, and answers (chain-worker.ts) */
export interface ChainJob {
  chains: string[][];
  pub: Pub;
}
export type ChainAnswer = { ok: true; results: ChainResult[] } | { ok: false; error: { message: string; name: string; file?: string; code?: string } };

function inWorker(job: ChainJob): Promise<ChainResult[]> {
  // the worker runs as its parent does (tsx in tests: the .ts file beside this one)
  const here = new URL(import.meta.url);
  const ts = here.pathname.endsWith('.ts');
  const file = new URL(ts ? './chain-worker.ts' : './chain-worker.js', here);
  return new Promise((resolve, reject) => {
    // (a worker does not take --import: under tsx it registers tsx itself, then loads the .ts file)
    const w = ts
      ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(file.href)}); });`, { eval: true, workerData: job })
      : new Worker(file, { workerData: job });
    w.once('message', (a: ChainAnswer) => {
      if (a.ok) resolve(a.results);
      else if (a.error.name === 'UnreadableLogError') reject(new UnreadableLogError(a.error.file ?? '?', Object.assign(new Error(a.error.message), { code: a.error.code })));
      else reject(Object.assign(new Error(a.error.message), a.error));
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`an audit worker exited with code ${code}`));
    });
  });
}

/** every chain's result, in the order of `chains`; on several cores when there are many */
export async function auditChains(chains: string[][], pub: Pub, source?: AsyncIterable<LogLine>): Promise<ChainResult[]> {
  const workers = Math.min(MAX_WORKERS, availableParallelism());
  if (source || chains.length < PARALLEL_FROM || workers < 2) {
    const out: ChainResult[] = [];
    for (const c of chains) out.push(await auditChain(c, pub, source));
    return out;
  }
  // contiguous slices of about equal total size keep the order simple to put back
  const per = Math.ceil(chains.length / workers);
  const slices: string[][][] = [];
  for (let i = 0; i < chains.length; i += per) slices.push(chains.slice(i, i + per));
  const parts = await Promise.all(slices.map((s) => inWorker({ chains: s, pub })));
  return parts.flat();
}
