// Config: a YAML file (validated, with positions) plus command-line flags → one frozen
// ResolvedConfig. Problems are data (LoadProblem); flag problems have line 0 and name the flag
// as their "file", so they print as `--mode: "fast" is not one of observe, enforce`.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { formatProblem, type LoadProblem } from '../events.js';
import { keyPositionOf, type Position, parseYamlText, zodProblems } from '../yaml-doc.js';
import {
  AFTER_TRIP,
  type ConfigKey,
  configSchema,
  DEFAULTS,
  EXEC_ONLY_KEYS,
  type HostPort,
  MODES,
  parseHostPort,
  type RawConfig,
  type ResolvedConfig,
  SENSORS,
  SUBJECT_KEYS,
  shippedRulesDir,
  tokenProblem,
  WS_OFF,
} from './schema.js';

/** what commander 14 hands over for the shared options (camelCase; repeatable ones as lists) */
export interface ConfigFlags {
  config?: string;
  rules?: string[];
  weights?: string[];
  allowPid?: string[];
  protectPid?: string[];
  watch?: string[];
  log?: string;
  mode?: string;
  afterTrip?: string;
  sensor?: string;
  ws?: string;
  wsToken?: string;
  nvidiaSmi?: string;
  socket?: string;
  subjectCgroup?: string;
  subjectPid?: string;
  subjectUid?: string;
  user?: string;
  failClosed?: boolean;
  recordEvents?: boolean;
  gpuInterval?: string;
  gpuReplicaShare?: string;
  probeTimeout?: string;
  portInterval?: string;
  wsHeartbeat?: string;
}

/** where a loaded config came from; rides on the raw object under a symbol so callers can pass it along untouched */
export const CONFIG_SOURCE = Symbol('redline.configSource');
export interface ConfigSource {
  /** absolute path of the file */
  file: string;
  /** the file's name as given, for messages */
  shown: string;
  positions: Partial<Record<ConfigKey, Position>>;
}
export type LoadedConfig = RawConfig & { readonly [CONFIG_SOURCE]?: ConfigSource };

/** `file:line:col: message` for file problems, `--flag: message` for flag problems (line 0) */
export function formatConfigProblem(p: LoadProblem): string {
  return p.line === 0 ? `${p.file}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message}` : formatProblem(p);
}

export function loadConfigFile(file: string): { raw?: LoadedConfig; problems: LoadProblem[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { problems: [{ code: 'io', file, line: 1, col: 1, message: `cannot read: ${why}`, severity: 'error' }] };
  }
  const parsed = parseYamlText(file, text);
  const problems = [...parsed.problems];
  const { doc, lineCounter } = parsed;
  if (!doc || problems.some((p) => p.severity === 'error')) return { problems };
  // an empty file (or only comments) is an empty config: every default applies
  const data: unknown = doc.contents === null ? {} : doc.toJS();
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    problems.push({ code: 'shape', file, line: 1, col: 1, message: 'a config file is a YAML map of option: value (the option names of the flags, without --)', severity: 'error' });
    return { problems };
  }
  const res = configSchema.safeParse(data);
  if (!res.success) {
    problems.push(...zodProblems(file, doc, lineCounter, res.error, [], configSchema));
    return { problems };
  }
  const positions: ConfigSource['positions'] = {};
  for (const key of Object.keys(res.data) as ConfigKey[]) positions[key] = keyPositionOf(doc, lineCounter, [key]);
  const raw: LoadedConfig = res.data;
  Object.defineProperty(raw, CONFIG_SOURCE, { value: { file: resolve(file), shown: file, positions } satisfies ConfigSource, enumerable: false });
  return { raw, problems };
}

const FLAG_OF: Record<ConfigKey, keyof ConfigFlags> = {
  rules: 'rules',
  weights: 'weights',
  'allow-pid': 'allowPid',
  'protect-pid': 'protectPid',
  watch: 'watch',
  log: 'log',
  mode: 'mode',
  'after-trip': 'afterTrip',
  sensor: 'sensor',
  ws: 'ws',
  'ws-token': 'wsToken',
  'nvidia-smi': 'nvidiaSmi',
  socket: 'socket',
  'subject-cgroup': 'subjectCgroup',
  'subject-pid': 'subjectPid',
  'subject-uid': 'subjectUid',
  user: 'user',
  'fail-closed': 'failClosed',
  'record-events': 'recordEvents',
  'gpu-interval': 'gpuInterval',
  'gpu-replica-share': 'gpuReplicaShare',
  'probe-timeout': 'probeTimeout',
  'port-interval': 'portInterval',
  'ws-heartbeat': 'wsHeartbeat',
};

const MAX_UID = 4294967294; // (uid_t)-1 means "no uid"

/**
 * Flags win over the file; a repeatable flag replaces the file's whole list. Relative paths
 * from the file are taken from the file's folder, from flags from the working folder.
 * Decisions: the three subject keys are one setting, so a subject flag replaces the file's
 * subject rather than conflicting with it; exec-only keys (after-trip, user) under `run` and
 * subject keys under `exec` are errors, not silently ignored; an empty REDLINE_WS_TOKEN is unset.
 */
export function resolveConfig(
  command: 'exec' | 'run',
  fileRaw: LoadedConfig | undefined,
  flags: ConfigFlags,
  env: NodeJS.ProcessEnv = process.env,
): { config?: ResolvedConfig; problems: LoadProblem[] } {
  const problems: LoadProblem[] = [];
  const file: LoadedConfig = fileRaw ?? {};
  const src = fileRaw?.[CONFIG_SOURCE];
  const cwd = process.cwd();
  const fileBase = src ? dirname(src.file) : cwd;

  const flagProblem = (key: ConfigKey, message: string) => problems.push({ code: 'flag', file: `--${key}`, line: 0, col: 0, message, severity: 'error' });
  const fileProblem = (key: ConfigKey, message: string) => {
    const at = src?.positions[key];
    problems.push(
      at && src
        ? { code: 'config', file: src.shown, line: at.line, col: at.col, message: `${key}: ${message}`, severity: 'error' }
        : { code: 'config', file: `${src?.shown ?? 'config'}`, line: 0, col: 0, message: `${key}: ${message}`, severity: 'error' },
    );
  };
  const fromFlag = (key: ConfigKey) => flags[FLAG_OF[key]] !== undefined;

  const intFlag = (key: ConfigKey, s: string, min: number, max: number, what: string): number | undefined => {
    const t = String(s).trim();
    const n = /^\d+$/.test(t) ? Number(t) : Number.NaN;
    if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
    flagProblem(key, `"${s}" is not ${what} (an integer${min > 0 ? ` from ${min}` : ''}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''})`);
    return undefined;
  };
  const pathList = (key: 'rules' | 'weights' | 'watch', fallback: string[]): string[] => {
    const given = flags[key];
    if (given !== undefined) {
      if (given.some((p) => p === '')) flagProblem(key, 'must not be empty');
      return given.filter((p) => p !== '').map((p) => resolve(cwd, p));
    }
    const v = file[key];
    return v === undefined ? fallback : (Array.isArray(v) ? v : [v]).map((p) => resolve(fileBase, p));
  };
  const pidList = (key: 'allow-pid' | 'protect-pid'): number[] => {
    const given = flags[FLAG_OF[key] as 'allowPid' | 'protectPid'];
    if (given !== undefined) return given.flatMap((s) => intFlag(key, s, 1, Number.MAX_SAFE_INTEGER, 'a process id') ?? []);
    const v = file[key];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  };
  const choice = <T extends string>(key: ConfigKey, values: readonly T[], fallback: T): T => {
    const f = flags[FLAG_OF[key]];
    if (f === undefined) return (file[key] as T | undefined) ?? fallback;
    if ((values as readonly string[]).includes(String(f))) return f as T;
    flagProblem(key, `"${String(f)}" is not one of ${values.join(', ')}`);
    return fallback;
  };
  /** a bare program name stays a name (PATH lookup); a path is made absolute */
  const program = (v: string, base: string) => (v.includes('/') ? resolve(base, v) : v);
  const filePath = (key: 'log' | 'socket' | 'nvidia-smi'): string | undefined => {
    const f = flags[FLAG_OF[key] as 'log' | 'socket' | 'nvidiaSmi'];
    if (f !== undefined) {
      if (f === '') {
        flagProblem(key, 'must not be empty');
        return undefined;
      }
      return key === 'nvidia-smi' ? program(f, cwd) : resolve(cwd, f);
    }
    const v = file[key];
    if (v === undefined) return undefined;
    return key === 'nvidia-smi' ? program(v, fileBase) : resolve(fileBase, v);
  };

  const rules = pathList('rules', [shippedRulesDir()]);
  const weights = pathList('weights', []);
  const watch = pathList('watch', []);
  const allowPids = pidList('allow-pid');
  const protectPids = pidList('protect-pid');
  const mode = choice('mode', MODES, DEFAULTS.mode);
  const afterTrip = choice('after-trip', AFTER_TRIP, DEFAULTS.afterTrip);
  const sensor = choice('sensor', SENSORS, DEFAULTS.sensor);
  const log = filePath('log') ?? (command === 'run' ? DEFAULTS.runLog : undefined);
  // the control socket: CONTRACT.md's default for both commands; `--socket off` turns it off
  const socketGiven = flags.socket ?? file.socket;
  const socket = socketGiven !== undefined && (WS_OFF as readonly string[]).includes(socketGiven) ? undefined : (filePath('socket') ?? DEFAULTS.socket);
  const nvidiaSmi = filePath('nvidia-smi') ?? DEFAULTS.nvidiaSmi;

  let ws: HostPort | undefined = command === 'run' ? { ...DEFAULTS.runWs } : undefined;
  const wsGiven = flags.ws ?? file.ws;
  if (wsGiven === false || (typeof wsGiven === 'string' && (WS_OFF as readonly string[]).includes(wsGiven))) ws = undefined;
  else if (typeof wsGiven === 'string') {
    const r = parseHostPort(wsGiven);
    if (typeof r !== 'string') ws = r;
    else if (fromFlag('ws')) flagProblem('ws', r);
    else fileProblem('ws', r); // loadConfigFile checked it already; a hand-made raw may not be
  }

  let wsToken: string | undefined;
  if (flags.wsToken !== undefined) {
    const why = tokenProblem(flags.wsToken);
    if (why) flagProblem('ws-token', why);
    else wsToken = flags.wsToken;
  } else if (file['ws-token'] !== undefined) wsToken = file['ws-token'];
  else if (env[DEFAULTS.wsTokenEnv]) {
    const t = env[DEFAULTS.wsTokenEnv] ?? '';
    const why = tokenProblem(t);
    if (why) problems.push({ code: 'env', file: DEFAULTS.wsTokenEnv, line: 0, col: 0, message: why, severity: 'error' });
    else wsToken = t;
  }

  // the subject: flags as a whole replace the file's choice
  const subjectFromFlags = SUBJECT_KEYS.some(fromFlag);
  let subjectCgroup: string | undefined;
  let subjectPid: number | undefined;
  let subjectUid: number | undefined;
  if (subjectFromFlags) {
    if (flags.subjectCgroup !== undefined) {
      if (flags.subjectCgroup === '') flagProblem('subject-cgroup', 'must not be empty');
      else subjectCgroup = flags.subjectCgroup;
    }
    if (flags.subjectPid !== undefined) subjectPid = intFlag('subject-pid', flags.subjectPid, 1, Number.MAX_SAFE_INTEGER, 'a process id');
    if (flags.subjectUid !== undefined) subjectUid = intFlag('subject-uid', flags.subjectUid, 0, MAX_UID, 'a user id');
  } else {
    subjectCgroup = file['subject-cgroup'];
    subjectPid = file['subject-pid'];
    subjectUid = file['subject-uid'];
  }
  const subjectKeys = SUBJECT_KEYS.filter((k) => (subjectFromFlags ? fromFlag(k) : file[k] !== undefined));
  const blame = (key: ConfigKey, message: string) => (fromFlag(key) ? flagProblem(key, message) : fileProblem(key, message));
  if (command === 'exec') {
    for (const k of SUBJECT_KEYS) {
      if (fromFlag(k) || file[k] !== undefined) blame(k, 'only `run` takes a subject; `exec` makes its command the subject');
    }
  } else {
    if (subjectKeys.length === 0) {
      problems.push({ code: 'config', file: 'run', line: 0, col: 0, message: 'needs a subject: --subject-cgroup PATH, --subject-pid PID or --subject-uid UID', severity: 'error' });
    }
    for (const k of subjectKeys.slice(1)) blame(k, `conflicts with ${subjectKeys[0]}: give exactly one subject`);
    for (const k of EXEC_ONLY_KEYS) {
      if (fromFlag(k) || file[k] !== undefined) blame(k, 'only `exec` takes this (it starts the subject; `run` watches one)');
    }
  }

  let user: string | undefined;
  if (flags.user !== undefined) {
    if (flags.user === '') flagProblem('user', 'must not be empty');
    else user = flags.user;
  } else if (file.user !== undefined) user = String(file.user);

  const failClosed = flags.failClosed ?? file['fail-closed'] ?? false;
  const recordEvents = flags.recordEvents ?? file['record-events'] ?? false;
  const numberFlag = (key: 'gpu-interval' | 'gpu-replica-share' | 'probe-timeout' | 'port-interval' | 'ws-heartbeat', raw: string | undefined, ok: (n: number) => boolean, what: string): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || !ok(n)) {
      flagProblem(key, `"${raw}" is not ${what}`);
      return undefined;
    }
    return n;
  };
  const gpuIntervalMs =
    numberFlag('gpu-interval', flags.gpuInterval, (n) => Number.isInteger(n) && n >= 100 && n <= 60_000, 'a whole number of milliseconds from 100 to 60000') ??
    file['gpu-interval'] ??
    DEFAULTS.gpuIntervalMs;
  const gpuReplicaShare = numberFlag('gpu-replica-share', flags.gpuReplicaShare, (n) => n > 0 && n <= 1, 'a share above 0 and at most 1') ?? file['gpu-replica-share'] ?? DEFAULTS.gpuReplicaShare;
  const probeTimeoutMs =
    numberFlag('probe-timeout', flags.probeTimeout, (n) => Number.isInteger(n) && n >= 50 && n <= 10_000, 'a whole number of milliseconds from 50 to 10000') ??
    file['probe-timeout'] ??
    DEFAULTS.probeTimeoutMs;
  const portIntervalMs =
    numberFlag('port-interval', flags.portInterval, (n) => Number.isInteger(n) && n >= 100 && n <= 60_000, 'a whole number of milliseconds from 100 to 60000') ??
    file['port-interval'] ??
    DEFAULTS.portIntervalMs;
  const wsHeartbeatMs =
    numberFlag('ws-heartbeat', flags.wsHeartbeat, (n) => Number.isInteger(n) && n >= 100 && n <= 60_000, 'a whole number of milliseconds from 100 to 60000') ??
    file['ws-heartbeat'] ??
    DEFAULTS.wsHeartbeatMs;
  const configFile = src?.file ?? (flags.config !== undefined ? resolve(cwd, flags.config) : undefined);

  if (problems.some((p) => p.severity === 'error')) return { problems };
  const config: ResolvedConfig = {
    command,
    rules: Object.freeze(rules),
    weights: Object.freeze(weights),
    allowPids: Object.freeze(allowPids),
    protectPids: Object.freeze(protectPids),
    watch: Object.freeze(watch),
    log,
    mode,
    afterTrip,
    sensor,
    ws: ws && Object.freeze(ws),
    wsToken,
    nvidiaSmi,
    socket,
    failClosed,
    recordEvents,
    gpuIntervalMs,
    gpuReplicaShare,
    probeTimeoutMs,
    portIntervalMs,
    wsHeartbeatMs,
    ...(subjectCgroup !== undefined && { subjectCgroup }),
    ...(subjectPid !== undefined && { subjectPid }),
    ...(subjectUid !== undefined && { subjectUid }),
    ...(user !== undefined && { user }),
    ...(configFile !== undefined && { configFile }),
  };
  return { config: Object.freeze(config), problems };
}
