// The vocabulary the options table is written in: value schemas (each with its range, and
// the phrase a flag problem quotes), host:port and token checks, and the defaults other
// commands read. The table itself is options.ts.
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const MODES = ['observe', 'enforce'] as const;
export const AFTER_TRIP = ['hold', 'kill'] as const;
// `poll` stays a known word so that asking for it gets the reason it cannot run, not "not one of"
export const SENSORS = ['auto', 'ebpf', 'poll'] as const;

/** words that switch the websocket off (`--ws off`, `ws: off`); decision: `run` needs a way to not listen */
export const WS_OFF = ['off', 'none'] as const;
export const isOff = (v: string | false): boolean => v === false || (WS_OFF as readonly string[]).includes(v);

export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * `HOST:PORT` or `[IPV6]:PORT` → {host, port}, or a reason it is not one. The host must be
 * given (decision: `:7077` would silently mean every interface). An IPv6 host is returned
 * without brackets, as net.listen wants it. Port 0 is allowed: the OS picks one (tests).
 */
export function parseHostPort(s: string): HostPort | string {
  const hint = `"${s}" is not HOST:PORT (e.g. 127.0.0.1:7077 or [::1]:7077)`;
  let host: string;
  let port: string;
  const v6 = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
  if (v6) {
    host = v6[1] ?? '';
    port = v6[2] ?? '';
    if (isIP(host) !== 6) return `${hint}: "${host}" is not an IPv6 address`;
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) return hint;
    host = s.slice(0, i);
    port = s.slice(i + 1);
    if (host.includes(':')) return `${hint}: put an IPv6 address in brackets`;
    if (!host) return `${hint}: the host is missing`;
    const dotted = /^[\d.]+$/.test(host);
    if (dotted ? isIP(host) !== 4 : !HOSTNAME.test(host)) return `${hint}: "${host}" is not a host name or IPv4 address`;
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return `${hint}: the port must be a number from 0 to 65535`;
  return { host, port: Number(port) };
}

/** bearer tokens travel in an Authorization header or a query string: no spaces or control characters */
export function tokenProblem(t: string): string | undefined {
  if (t.length === 0) return 'must not be empty';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is rejected
  if (/[\s\x00-\x1f\x7f]/.test(t)) return 'must not contain spaces or control characters';
  return undefined;
}

/** a check that returns its reason becomes a zod refinement whose message is that reason */
const checked = <S extends z.ZodType>(schema: S, why: (v: z.output<S>) => string | undefined): S =>
  schema.superRefine((v, ctx) => {
    const message = why(v);
    if (message) ctx.addIssue({ code: 'custom', message });
  }) as unknown as S;

// A description is the phrase a bad flag value is quoted against (`"abc" is not a process id
// (an integer from 1)`), so it sits next to the range it describes; it also lands in the JSON Schema.
const MAX_UID = 4294967294; // (uid_t)-1 means "no uid"
export const V = {
  path: z.string().min(1),
  pid: z.number().int().positive().describe('a process id (an integer from 1)'),
  uid: z.number().int().nonnegative().max(MAX_UID).describe(`a user id (an integer to ${MAX_UID})`),
  ms: (min: number, max: number) => z.number().int().min(min).max(max).describe(`a whole number of milliseconds from ${min} to ${max}`),
  share: z.number().gt(0).max(1).describe('a share above 0 and at most 1'),
  token: checked(z.string(), tokenProblem),
  /** NAME:TOKEN, the name a person or role (it is written into the action records) */
  operatorToken: checked(z.string(), (v) => {
    const m = /^([A-Za-z0-9._-]{1,64}):(.+)$/.exec(v);
    if (!m) return 'is NAME:TOKEN (NAME: 1–64 of A-Z a-z 0-9 . _ -)';
    return tokenProblem(m[2] as string);
  }),
  /** HOST:PORT, or off (`false` too: YAML authors write `ws: false`) */
  listen: z.union([z.literal(false), checked(z.string(), listenProblem)]),
  /** a name or a numeric uid (YAML reads `user: 1000` as a number) */
  user: z.union([z.string().min(1), z.number().int().nonnegative()]),
  /** 90s, 30m, 2h, 1500ms, or a bare number of seconds (YAML reads `timeout: 90` as a number) */
  duration: z.union([z.number().positive(), checked(z.string(), durationProblem)]).describe('a duration: 1500ms, 90s, 30m, 2h, or seconds'),
  // `: boolean` keeps this from narrowing the type: the field still means auto|ebpf|poll
  sensor: z.enum(SENSORS),
};

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function durationProblem(s: string): string | undefined {
  const m = DURATION.exec(s.trim());
  if (!m) return `"${s}" is not a duration (1500ms, 90s, 30m, 2h, or seconds)`;
  return Number(m[1]) > 0 ? undefined : 'must be more than 0';
}

/** a duration the schema accepted, in whole milliseconds */
export function durationToMs(v: number | string): number {
  if (typeof v === 'number') return Math.round(v * 1000);
  const m = DURATION.exec(v.trim()) as RegExpExecArray;
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 's'] as number));
}

function listenProblem(s: string): string | undefined {
  if (isOff(s)) return undefined;
  const r = parseHostPort(s);
  return typeof r === 'string' ? r : undefined;
}

/** the parsed form of a listen value that the schema accepted */
export function listenAddress(v: string | false): Readonly<HostPort> | undefined {
  if (isOff(v)) return undefined;
  const r = parseHostPort(v as string);
  if (typeof r === 'string') throw new Error(`unchecked listen address: ${r}`);
  return Object.freeze(r);
}

export const DEFAULTS = {
  runLog: '/var/log/redline/audit.ndjson',
  mode: 'enforce',
  afterTrip: 'kill',
  sensor: 'auto',
  runWs: { host: '127.0.0.1', port: 7077 },
  nvidiaSmi: 'nvidia-smi',
  socket: '/run/redline/control.sock',
  wsTokenEnv: 'REDLINE_WS_TOKEN',
  gpuIntervalMs: 1000,
  gpuReplicaShare: 0.5,
  loadShare: 0.5,
  diskFreeMin: 0.05,
  probeTimeoutMs: 500,
  portIntervalMs: 1000,
  wsHeartbeatMs: 5000,
  heartbeatWindowMs: 500,
  sealRecords: 1000,
  natsStream: 'REDLINE',
  natsPrefix: 'redline',
  natsSpoolMax: 256 * 1024 * 1024,
  sealIntervalMs: 10_000,
} as const;

/**
 * The shipped rules/ folder. From the sources this file is daemon/config/schema.ts (two levels
 * below the package root); compiled it is dist/daemon/config/schema.js (three levels).
 */
export function shippedRulesDir(): string {
  const two = fileURLToPath(new URL('../../rules', import.meta.url));
  const three = fileURLToPath(new URL('../../../rules', import.meta.url));
  // two levels first: the sources, or a build that copied rules/ into dist/
  if (!existsSync(two) && existsSync(three)) return three;
  return two;
}
