// THE options of `exec` and `run`, each declared once. Commander's options, the config file's
// schema (keys spelled like the flags), its JSON Schema and the resolved config's type are all
// derived from this table (table.ts, resolve.ts): adding an option is adding an entry here.
import { resolve } from 'node:path';
import { z } from 'zod';
import { AFTER_TRIP, DEFAULTS, durationToMs, type HostPort, isOff, listenAddress, MODES, shippedRulesDir, V } from './schema.js';
import { type FlagsOf, fileSchemaOf, jsonSchemaOf, option, type RawOf, type ResolvedOf } from './table.js';

const absolute = (p: string, at: { base: string }) => resolve(at.base, p);
/** a bare program name stays a name (PATH lookup); a path is made absolute */
const program = (p: string, at: { base: string }) => (p.includes('/') ? resolve(at.base, p) : p);
const forRun = <D>(d: D) => (at: { command: string }) => (at.command === 'run' ? d : undefined);

const SUBJECT = { commands: 'run', oneOf: 'subject', only: 'only `run` takes a subject; `exec` makes its command the subject' } as const;
// exec starts the subject; run watches one that exists
const EXEC_ONLY = { commands: 'exec', only: 'only `exec` takes this (it starts the subject; `run` watches one)' } as const;

export const OPTIONS = {
  config: option(V.path, { field: 'configFile', arg: 'file', flagOnly: true, help: 'YAML config; flags override it', place: absolute }),
  rules: option(V.path, {
    field: 'rules',
    arg: 'path',
    repeatable: 'non-empty', // no rules would watch nothing
    help: 'rule file or folder; default: the shipped rules/',
    place: absolute,
    default: () => [shippedRulesDir()],
  }),
  weights: option(V.path, { field: 'weights', arg: 'path', repeatable: true, help: 'protected weights, files or folders', place: absolute }),
  'allow-pid': option(V.pid, { field: 'allowPids', arg: 'pid', repeatable: true, help: 'process allowed to hold the weights' }),
  'protect-pid': option(V.pid, { field: 'protectPids', arg: 'pid', repeatable: true, help: 'process the subject must not signal' }),
  watch: option(V.path, { field: 'watch', arg: 'dir', repeatable: true, help: 'extra folder to watch for weight copies', place: absolute }),
  log: option(V.path, {
    field: 'log',
    arg: 'file',
    help: 'the audit log, NDJSON (exec: ./redline-TRIAL.ndjson)',
    place: absolute,
    // exec's default is named after the trial, which the command picks
    default: forRun<string>(DEFAULTS.runLog),
  }),
  mode: option(z.enum(MODES), { field: 'mode', help: 'observe: alert only; enforce: freeze and kill', default: () => DEFAULTS.mode }),
  sensor: option(V.sensor, {
    field: 'sensor',
    help: 'what sees the subject: ebpf (root and bpftrace), poll (/proc on an interval, no root needed), auto: ebpf where it can run, else poll',
    default: () => DEFAULTS.sensor,
  }),
  ws: option(V.listen, {
    field: 'ws',
    arg: 'host:port',
    help: `websocket listen address, or off (run: default ${DEFAULTS.runWs.host}:${DEFAULTS.runWs.port}; exec: off)`,
    place: listenAddress,
    default: forRun<Readonly<HostPort>>({ ...DEFAULTS.runWs }),
  }),
  'ws-operator-token': option(V.operatorToken, {
    field: 'wsOperatorTokens',
    arg: 'name:token',
    repeatable: true,
    help: 'a token for the dashboard that may also operate (freeze, thaw, kill, mode); its name goes into the action records',
  }),
  'ws-token': option(V.token, { field: 'wsToken', arg: 'token', env: DEFAULTS.wsTokenEnv, help: `bearer token the websocket requires (also ${DEFAULTS.wsTokenEnv})` }),
  'nvidia-smi': option(V.path, { field: 'nvidiaSmi', arg: 'path', help: 'the nvidia-smi binary to query', place: program, default: () => DEFAULTS.nvidiaSmi }),
  socket: option(V.path, {
    field: 'socket',
    arg: 'path',
    help: 'the control socket, or off',
    place: (p, at) => (isOff(p) ? undefined : absolute(p, at)),
    default: () => DEFAULTS.socket,
  }),
  'log-group': option(V.user, {
    field: 'logGroup',
    arg: 'group',
    help: 'group that may read the audit log (the file is then 0640); default: 0600, its owner alone',
  }),
  metrics: option(V.listen, {
    field: 'metrics',
    arg: 'host:port',
    help: 'serve Prometheus /metrics there (off by default)',
    place: listenAddress,
  }),
  nats: option(z.string().min(1).describe('a NATS URL (nats://host:4222, several joined by commas)'), {
    field: 'nats',
    arg: 'url',
    help: 'publish every record to a NATS JetStream stream (subject PREFIX.HOST.KIND)',
  }),
  'nats-creds': option(V.path, { field: 'natsCreds', arg: 'file', help: 'NATS credentials file (user JWT and seed)', place: absolute }),
  'nats-token': option(V.token, { field: 'natsToken', arg: 'token', env: 'REDLINE_NATS_TOKEN', help: 'NATS token (also REDLINE_NATS_TOKEN)' }),
  'nats-stream': option(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).describe('a stream name (A-Z a-z 0-9 _ -)'), {
    field: 'natsStream',
    arg: 'name',
    help: 'the JetStream stream (created when missing)',
    default: () => DEFAULTS.natsStream,
  }),
  'nats-prefix': option(z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/).describe('subject tokens joined by dots'), {
    field: 'natsPrefix',
    arg: 'prefix',
    help: 'the subjects\' prefix',
    default: () => DEFAULTS.natsPrefix,
  }),
  'nats-spool-max': option(z.number().int().min(1024).describe('a number of bytes from 1024'), {
    field: 'natsSpoolMax',
    arg: 'bytes',
    help: 'the most the records waiting for NATS may take on disk, beside the log',
    default: () => DEFAULTS.natsSpoolMax,
  }),
  'sign-key': option(V.path, {
    field: 'signKey',
    arg: 'file',
    help: 'Ed25519 private key (redline keygen): append signed seal records; read once at start, keep it where the subject cannot read',
    place: absolute,
  }),
  'seal-records': option(z.number().int().min(1).max(1_000_000).describe('a whole number of records from 1 to 1000000'), {
    field: 'sealRecords',
    arg: 'n',
    help: 'with --sign-key: a seal at the latest after this many records',
    default: () => DEFAULTS.sealRecords,
  }),
  'seal-interval': option(V.duration, {
    field: 'sealIntervalMs',
    arg: 'duration',
    help: 'with --sign-key: a seal at the latest this long after a record (10s, 1m)',
    place: (d) => durationToMs(d),
    default: () => DEFAULTS.sealIntervalMs,
  }),
  'fail-closed': option(z.boolean(), { field: 'failClosed', help: 'freeze the subject when the monitor can no longer see', default: () => false }),
  'record-events': option(z.boolean(), { field: 'recordEvents', help: 'log every event as the rules saw it (for redline rules test)', default: () => false }),
  'gpu-interval': option(V.ms(100, 60_000), { field: 'gpuIntervalMs', arg: 'ms', help: 'how often to poll nvidia-smi', default: () => DEFAULTS.gpuIntervalMs }),
  'gpu-replica-share': option(V.share, {
    field: 'gpuReplicaShare',
    arg: 'share',
    help: 'GPU memory share of the allowed server that makes a replica',
    default: () => DEFAULTS.gpuReplicaShare,
  }),
  'load-share': option(V.share, {
    field: 'loadShare',
    arg: 'share',
    help: 'share of a model (its shards summed) a process must map or read to be loading it',
    default: () => DEFAULTS.loadShare,
  }),
  'protect-path': option(V.path, {
    field: 'protectPaths',
    arg: 'path',
    repeatable: true,
    help: 'a file or folder the subject must not remove, truncate, overwrite or re-mode (the serving script, the model\'s folder): system.damage',
    place: absolute,
  }),
  'disk-free-min': option(V.share, {
    field: 'diskFreeMin',
    arg: 'share',
    help: 'a filesystem the subject writes to is filled when its free space falls under this share of its size (system.damage)',
    default: () => DEFAULTS.diskFreeMin,
  }),
  'probe-timeout': option(V.ms(50, 10_000), { field: 'probeTimeoutMs', arg: 'ms', help: 'how long the serving probe waits for each answer', default: () => DEFAULTS.probeTimeoutMs }),
  'ws-heartbeat': option(V.ms(100, 60_000), { field: 'wsHeartbeatMs', arg: 'ms', help: 'how often the websocket sends the chain head', default: () => DEFAULTS.wsHeartbeatMs }),
  'heartbeat-window': option(V.ms(200, 60_000), {
    field: 'heartbeatWindowMs',
    arg: 'ms',
    help: "how long the daemon may go without answering its watchdog before it counts as lost (hung)",
    default: () => DEFAULTS.heartbeatWindowMs,
  }),
  'poll-interval': option(V.ms(10, 10_000), { field: 'pollIntervalMs', arg: 'ms', help: 'how often the poll sensor reads /proc', default: () => 100 }),
  'poll-source': option(z.enum(['proc', 'ps-list']), {
    field: 'pollSource',
    help: 'where the poll sensor lists processes: /proc (the default where it is mounted), or ps-list (it sees no files)',
  }),
  'port-interval': option(V.ms(100, 60_000), {
    field: 'portIntervalMs',
    arg: 'ms',
    help: 'how often /proc/net is read for listeners eBPF did not attribute',
    default: () => DEFAULTS.portIntervalMs,
  }),
  'after-trip': option(z.enum(AFTER_TRIP), {
    ...EXEC_ONLY,
    field: 'afterTrip',
    help: 'after a freeze: hold it, or kill the subject once evidence is logged',
    default: () => DEFAULTS.afterTrip,
  }),
  timeout: option(V.duration, {
    ...EXEC_ONLY,
    field: 'timeoutMs',
    arg: 'duration',
    help: 'end the trial after this long: freeze, log the survivors, kill them (90s, 30m, 2h)',
    place: (d) => durationToMs(d),
  }),
  user: option(V.user, {
    ...EXEC_ONLY,
    field: 'user',
    arg: 'user',
    help: 'run CMD as this user (the supported deployment: the subject is not root)',
    place: (u) => String(u),
  }),
  // as given: absolute, or relative to the cgroup v2 mount (never to the working folder)
  'subject-cgroup': option(V.path, { ...SUBJECT, field: 'subjectCgroup', arg: 'path', help: 'the subject is this cgroup v2 group (absolute, or relative to the mount)' }),
  'subject-pid': option(V.pid, { ...SUBJECT, field: 'subjectPid', arg: 'pid', help: 'the subject is this pid and all its descendants' }),
  // each child group of it (or each group its last part's glob matches) is one subject and one trial
  'trials-under': option(V.path, { ...SUBJECT, field: 'trialsUnder', arg: 'cgroup', help: 'every child group under this cgroup v2 group, now or later, is one subject and one trial (a glob in the last part: docker-*.scope)' }),
  'subject-uid': option(V.uid, { ...SUBJECT, field: 'subjectUid', arg: 'uid', help: 'the subject is every process of this uid' }),
};

export type Options = typeof OPTIONS;
export type ResolvedConfig = ResolvedOf<Options>;
export type RawConfig = RawOf<Options>;
export type ConfigKey = keyof RawConfig;
export type ConfigFlags = FlagsOf<Options>;

export const configSchema = fileSchemaOf(OPTIONS);
export const configJsonSchema = (): Record<string, unknown> => jsonSchemaOf(OPTIONS);
