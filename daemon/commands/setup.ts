// What exec and run share before monitoring starts: config, rules, sensor availability.
import { groupId } from '../config/group.js';
import type { ResolvedConfig } from '../config/options.js';
import { type ConfigFlags, formatConfigProblem, type LoadedConfig, loadConfigFile, resolveConfig } from '../config/load.js';
import { loadRules } from '../engine/load.js';
import type { Ruleset } from '../engine/ruleset.js';
import { formatProblem } from '../events.js';
import { Monitor, type MonitorOptions } from '../monitor.js';
import { closeOutputs, openOutputs } from '../outputs/open.js';
import { readSigningKey, type SigningKey } from '../outputs/seal.js';
import { chooseSensor, type SensorChoice } from '../sensors/choose.js';
import { SensorStartError } from '../sensors/sensor.js';
import { logProblem, weightsProblems } from '../config/watchable.js';

export class UsageError extends Error {}

export function setup(command: 'exec' | 'run', flags: ConfigFlags): { config: ResolvedConfig; ruleset: Ruleset; ruleFiles: string[]; signing?: SigningKey; sensor: SensorChoice } {
  let raw: LoadedConfig | undefined;
  if (flags.config) {
    const file = loadConfigFile(flags.config);
    if (file.problems.some((p) => p.severity === 'error')) throw new UsageError(file.problems.map(formatConfigProblem).join('\n'));
    raw = file.raw;
  }
  const res = resolveConfig(command, raw, flags);
  if (!res.config) throw new UsageError(res.problems.map(formatConfigProblem).join('\n'));
  const config = res.config;
  if (config.logGroup !== undefined && groupId(config.logGroup) === null) throw new UsageError(`--log-group ${config.logGroup}: no such group`);
  // the key is read here, once: afterwards it is held in memory only
  let signing: SigningKey | undefined;
  try {
    if (config.signKey) signing = readSigningKey(config.signKey);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const rules = loadRules(config.rules);
  for (const w of rules.warnings) process.stderr.write(`${formatProblem(w)}\n`);
  if (!rules.ruleset) throw new UsageError(rules.errors.map(formatProblem).join('\n'));
  const sensor = chooseSensor(config.sensor);
  if (typeof sensor === 'string') throw new UsageError(sensor);
  if (sensor.why) process.stderr.write(`redline: the poll sensor watches (${sensor.why}); it cannot see signals or syscalls: \`redline doctor\` lists the rules that are inactive with it\n`);
  return { config, ruleset: rules.ruleset, ruleFiles: rules.files, sensor, ...(signing ? { signing } : {}) };
}

/**
 * The outputs to outside engines (--metrics, --nats) first: what the user must fix there stops
 * the command (exit 2) before any sensor starts; then the monitor, which closes them on stop.
 */
export async function startMonitor(o: Omit<MonitorOptions, 'outputs'>): Promise<Monitor> {
  let outputs: Awaited<ReturnType<typeof openOutputs>>;
  try {
    outputs = await openOutputs(o.config, o.logPath);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  try {
    return await Monitor.start({ ...o, outputs });
  } catch (e) {
    await closeOutputs(outputs);
    // what the user must fix (a sensor that cannot see here) is said plainly, exit 2
    throw e instanceof SensorStartError ? new UsageError(`cannot monitor: ${e.message}`) : e;
  }
}

/** the log can be written and each --weights path holds weights: else a usage error, before anything starts */
export function checkWatchable(config: { weights: readonly string[] }, logPath: string): void {
  const problems = weightsProblems(config.weights);
  const log = logProblem(logPath);
  if (log) problems.push(log);
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
}

export function newTrialId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `t-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}
