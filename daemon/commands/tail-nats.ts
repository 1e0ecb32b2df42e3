// `redline tail --nats URL [--host H] [--since SEQ]`: the records of every host (or one) from
// the JetStream stream the daemons publish to, oldest first, then live. Each line is the record
// with the host it came from (`{"host": H, …record}`), or a readable line with `[H]` in front.
import { DEFAULTS } from '../config/schema.js';
import { natsRecords } from '../outputs/nats-read.js';
import { UsageError } from './setup.js';
import { readable } from './tail.js';

export interface NatsTailOptions {
  nats: string;
  host?: string;
  since?: string;
  pretty?: boolean;
  natsCreds?: string;
  natsToken?: string;
  natsStream?: string;
  natsPrefix?: string;
}

export async function natsTailCommand(opts: NatsTailOptions, out = process.stdout, err = process.stderr): Promise<number> {
  let since = 0;
  if (opts.since !== undefined) {
    since = Number(opts.since);
    if (!Number.isInteger(since) || since < 0) throw new UsageError(`--since: "${opts.since}" is not a record number (0 or more)`);
  }
  const pretty = opts.pretty ?? out.isTTY === true;
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // a reader that went away (| head) ends the tail
  out.once('error', stop);
  try {
    const records = natsRecords(
      {
        url: opts.nats,
        stream: opts.natsStream ?? DEFAULTS.natsStream,
        prefix: opts.natsPrefix ?? DEFAULTS.natsPrefix,
        follow: true,
        ...(opts.host ? { host: opts.host } : {}),
        ...(opts.natsCreds ? { credsFile: opts.natsCreds } : {}),
        ...((opts.natsToken ?? process.env.REDLINE_NATS_TOKEN) ? { token: opts.natsToken ?? process.env.REDLINE_NATS_TOKEN } : {}),
      },
      abort.signal,
    );
    for await (const { host, text } of records) {
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      // --since is a record number of one host's log
      if (typeof r.seq === 'number' && r.seq < since) continue;
      out.write(pretty ? `[${host}] ${readable(r, out.isTTY === true)}\n` : `${JSON.stringify({ host, ...r })}\n`);
    }
    return 0;
  } catch (e) {
    if (abort.signal.aborted) return 0;
    err.write(`redline tail: NATS ${opts.nats}: ${(e as Error).message}\n`);
    return 2;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
