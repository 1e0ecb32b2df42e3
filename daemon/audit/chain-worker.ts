// An audit worker (chain-audit.ts auditChains): audits the chains it is given, one after the
// other, and answers with their results, or with the error that stopped it (an unreadable file).
import { parentPort, workerData } from 'node:worker_threads';
import { auditChain, type ChainAnswer, type ChainJob, type ChainResult } from './chain-audit.js';
import { UnreadableLogError } from './read.js';

const job = workerData as ChainJob;
const results: ChainResult[] = [];
let answer: ChainAnswer;
try {
  for (const c of job.chains) results.push(await auditChain(c, job.pub));
  answer = { ok: true, results };
} catch (e) {
  const err = e as Error & { code?: string; file?: string };
  // an unreadable file: its cause, to be said again in the parent as the same error
  const message = err instanceof UnreadableLogError ? ((err.cause as Error | undefined)?.message ?? err.message) : err.message;
  answer = { ok: false, error: { message, name: err instanceof UnreadableLogError ? 'UnreadableLogError' : err.name, ...(err.file ? { file: err.file } : {}), ...(err.code ? { code: err.code } : {}) } };
}
parentPort?.postMessage(answer);
