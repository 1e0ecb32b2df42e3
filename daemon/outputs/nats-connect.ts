// How redline connects to NATS (the output and `tail --nats` alike): the servers, the
// credentials, retrying for ever; which errors say the credentials were refused.
import { readFileSync } from 'node:fs';
import { type ConnectionOptions, credsAuthenticator } from 'nats';

/** a bad --nats option (a creds file that cannot be read): a usage error, not a retry */
export class NatsConfigError extends Error {}

/** a connection lost (or a publish failed) is tried again this often */
export const RETRY_MS = 1000;

/** a host name as one subject token: dots, spaces and wildcards would split or widen it */
export function subjectToken(s: string): string {
  return s.replace(/[.\s*>]/g, '_') || '_';
}

export function natsConnectOptions(o: { url: string; credsFile?: string; token?: string }): ConnectionOptions {
  const opts: ConnectionOptions = { servers: o.url.split(','), name: 'redline', maxReconnectAttempts: -1, reconnectTimeWait: RETRY_MS, timeout: 3000 };
  if (o.token) opts.token = o.token;
  if (o.credsFile) {
    let creds: Uint8Array;
    try {
      creds = readFileSync(o.credsFile);
    } catch (e) {
      throw new NatsConfigError(`--nats-creds ${o.credsFile}: ${(e as Error).message}`);
    }
    opts.authenticator = credsAuthenticator(creds);
  }
  return opts;
}

/** an error from the client that says the credentials were refused (fix them; retrying will not help) */
export function isAuthError(e: unknown): boolean {
  const code = String((e as { code?: unknown })?.code ?? '');
  return code === 'AUTHORIZATION_VIOLATION' || code === 'AUTHENTICATION_EXPIRED' || /authori[sz]ation violation|authentication/i.test(String((e as Error)?.message));
}

