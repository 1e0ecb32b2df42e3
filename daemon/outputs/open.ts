// The outputs that talk to engines outside the host (Prometheus, NATS), opened before the
// monitor starts: what the user must fix (a metrics port taken, NATS refusing the credentials,
// a stream with other subjects) stops the command there, before any subject runs.
import { hostname } from 'node:os';
import type { ResolvedConfig } from '../config/options.js';
import { MetricsServer } from './metrics.js';
import { NatsOutput } from './nats.js';

export interface Outputs {
  metrics?: MetricsServer;
  nats?: NatsOutput;
}

export async function openOutputs(config: ResolvedConfig, logPath: string): Promise<Outputs> {
  const out: Outputs = {};
  try {
    if (config.metrics) {
      const m = new MetricsServer(config.metrics.host, config.metrics.port, config.nats !== undefined);
      await m.start();
      out.metrics = m;
    }
    if (config.nats) {
      const n = new NatsOutput({
        url: config.nats,
        ...(config.natsCreds ? { credsFile: config.natsCreds } : {}),
        ...(config.natsToken ? { token: config.natsToken } : {}),
        stream: config.natsStream,
        prefix: config.natsPrefix,
        host: hostname(),
        logPath,
        spoolMaxBytes: config.natsSpoolMax,
      });
      await n.start();
      out.nats = n;
    }
  } catch (e) {
    await closeOutputs(out);
    throw e;
  }
  return out;
}

/** NATS first (it sends what is queued, then spools the rest), then the metrics */
export async function closeOutputs(o: Outputs): Promise<void> {
  await o.nats?.stop().catch(() => undefined);
  await o.metrics?.stop().catch(() => undefined);
}
