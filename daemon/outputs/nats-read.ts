// Reading the records back from the JetStream stream (`tail --nats`, `audit --nats`): an
// ordered consumer on `PREFIX.HOST.>` (one host) or `PREFIX.>` (all), from the stream's start.
import { connect, type JsMsg } from 'nats';
import { natsConnectOptions, subjectToken } from './nats.js';

export interface NatsReadOptions {
  url: string;
  credsFile?: string;
  token?: string;
  stream: string;
  prefix: string;
  /** one host's records (its subject token); all hosts when absent */
  host?: string;
  /** keep waiting for new records (tail); otherwise end once caught up (audit) */
  follow: boolean;
}

export interface NatsRecord {
  host: string;
  /** the record's line, as the host's log has it */
  text: string;
}

export async function* natsRecords(o: NatsReadOptions, signal?: AbortSignal): AsyncGenerator<NatsRecord> {
  const nc = await connect({ ...natsConnectOptions(o), maxReconnectAttempts: o.follow ? -1 : 3 });
  try {
    const js = nc.jetstream();
    const filter = o.host ? `${o.prefix}.${subjectToken(o.host)}.>` : `${o.prefix}.>`;
    const consumer = await js.consumers.get(o.stream, { filterSubjects: filter });
    if (!o.follow && (await consumer.info()).num_pending === 0) return;
    const messages = await consumer.consume();
    signal?.addEventListener('abort', () => void messages.close(), { once: true });
    for await (const m of messages as AsyncIterable<JsMsg>) {
      yield { host: m.headers?.get('Redline-Host') || (m.subject.split('.').at(-2) ?? ''), text: m.string() };
      if (!o.follow && m.info.pending === 0) break;
    }
    await messages.close();
  } finally {
    await nc.close().catch(() => undefined);
  }
}
