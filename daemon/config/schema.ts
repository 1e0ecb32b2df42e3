// The config file's shape (keys spelled like the CLI flags) and the resolved, frozen config
// that the commands use.
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const MODES = ['observe', 'enforce'] as const;
export const AFTER_TRIP = ['hold', 'kill'] as const;
export const SENSORS = ['auto', 'ebpf', 'poll'] as const;

/** words that switch the websocket off (`--ws off`, `ws: off`); decision: `run` needs a way to not listen */
export const WS_OFF = ['off', 'none'] as const;

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

const path = z.string().min(1);
const paths = z.union([path, z.array(path)]);
const pid = z.number().int().positive();
const pids = z.union([pid, z.array(pid)]);
const ws = z.union([
  z.literal(false),
  z.string().superRefine((s, ctx) => {
    if ((WS_OFF as readonly string[]).includes(s)) return;
    const r = parseHostPort(s);
    if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
  }),
]);
const token = z.string().superRefine((s, ctx) => {
  const why = tokenProblem(s);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

/** a config file: every key optional; a single value where the flag is repeatable is a one-item list */
export const configSchema = z.strictObject({
  rules: z.union([path, z.array(path).min(1)]).optional(),
  weights: paths.optional(),
  'allow-pid': pids.optional(),
  'protect-pid': pids.optional(),
  watch: paths.optional(),
  log: path.optional(),
  mode: z.enum(MODES).optional(),
  'after-trip': z.enum(AFTER_TRIP).optional(),
  sensor: z.enum(SENSORS).optional(),
  ws: ws.optional(),
  'ws-token': token.optional(),
  'nvidia-smi': path.optional(),
  socket: path.optional(),
  'subject-cgroup': path.optional(),
  'subject-pid': pid.optional(),
  'subject-uid': z.number().int().nonnegative().optional(),
  // a name or a numeric uid (YAML reads `user: 1000` as a number)
  user: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
  'fail-closed': z.boolean().optional(),
  /** log every event as the rules saw it, for `redline rules test` */
  'record-events': z.boolean().optional(),
  /** how often the GPU sensor polls nvidia-smi, milliseconds */
  'gpu-interval': z.number().int().min(100).max(60_000).optional(),
  /** a subject process holding this share of the allowed server's GPU memory is a replica */
  'gpu-replica-share': z.number().gt(0).max(1).optional(),
  /** how long the serving probe waits for each answer, milliseconds */
  'probe-timeout': z.number().int().min(50).max(10_000).optional(),
  /** how often the websocket sends its heartbeat (the chain head), milliseconds */
  'ws-heartbeat': z.number().int().min(100).max(60_000).optional(),
  /** how often /proc/net is read for listeners eBPF did not attribute, milliseconds */
  'port-interval': z.number().int().min(100).max(60_000).optional(),
});

export type RawConfig = z.infer<typeof configSchema>;
export type ConfigKey = keyof RawConfig;

export const SUBJECT_KEYS = ['subject-cgroup', 'subject-pid', 'subject-uid'] as const satisfies readonly ConfigKey[];
/** keys that only mean something to `exec` (it starts the subject; `run` finds one) */
export const EXEC_ONLY_KEYS = ['after-trip', 'user'] as const satisfies readonly ConfigKey[];

export interface ResolvedConfig {
  readonly command: 'exec' | 'run';
  readonly rules: readonly string[];
  readonly weights: readonly string[];
  readonly allowPids: readonly number[];
  readonly protectPids: readonly number[];
  readonly watch: readonly string[];
  /** run: /var/log/redline/audit.ndjson by default; exec: undefined (the command names it after the trial) */
  readonly log: string | undefined;
  readonly mode: 'observe' | 'enforce';
  readonly afterTrip: 'hold' | 'kill';
  readonly sensor: 'auto' | 'ebpf' | 'poll';
  /** undefined: no websocket */
  readonly ws: { readonly host: string; readonly port: number } | undefined;
  readonly wsToken: string | undefined;
  /** a bare name is looked up in PATH; anything with a slash is an absolute path */
  readonly nvidiaSmi: string;
  /** undefined: no control socket (`--socket off`) */
  readonly socket: string | undefined;
  /** as given: absolute, or relative to the cgroup v2 mount (never to the working folder) */
  readonly subjectCgroup?: string;
  readonly subjectPid?: number;
  readonly subjectUid?: number;
  readonly user?: string;
  readonly failClosed: boolean;
  readonly recordEvents: boolean;
  readonly gpuIntervalMs: number;
  readonly gpuReplicaShare: number;
  readonly probeTimeoutMs: number;
  readonly portIntervalMs: number;
  readonly wsHeartbeatMs: number;
  /** absolute path of the config file, when one was used */
  readonly configFile?: string;
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
  probeTimeoutMs: 500,
  portIntervalMs: 1000,
  wsHeartbeatMs: 5000,
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
