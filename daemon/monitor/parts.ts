// What one monitored subject is made of, built in one place: the audit log, the trials, the
// scope, the process table, the process sensor, the analyzers and the pipeline. Nothing here
// starts anything; the start-up steps (monitor.ts) do, each with its teardown.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DiskWatch } from '../analyze/disk.js';
import { OrphanCheck } from '../analyze/orphans.js';
import { ProbeScheduler } from '../analyze/probes.js';
import { ScanTracker } from '../analyze/scans.js';
import { WeightsTracker } from '../analyze/weights/tracker.js';
import { findCgroupV2Mount } from '../cgroup.js';
import { groupId } from '../config/group.js';
import type { ResolvedConfig } from '../config/options.js';
import type { Ruleset } from '../engine/ruleset.js';
import { ProtectedAreas } from '../enrich/areas.js';
import { Ingress } from '../enrich/ingress.js';
import type { Deadman } from '../deadman.js';
import type { ControlServer } from '../control/server.js';
import type { Operator } from '../control/operator.js';
import type { GuardStatus, LsmGuard } from '../guard/index.js';
import { AuditLog } from '../outputs/audit-log.js';
import type { Outputs } from '../outputs/open.js';
import type { SigningKey } from '../outputs/seal.js';
import type { StreamServer } from '../outputs/stream.js';
import { Pipeline } from '../pipeline.js';
import { ProcessTable } from '../process-table.js';
import { Scope } from '../scope.js';
import type { SensorChoice } from '../sensors/choose.js';
import { EbpfSensor } from '../sensors/ebpf/index.js';
import type { GpuSensor } from '../sensors/gpu/index.js';
import { PollSensor } from '../sensors/poll/index.js';
import { PortPoller } from '../sensors/ports/poll.js';
import { WeightRegistry } from '../sensors/weights/registry.js';
import type { FolderWatcher } from '../sensors/weights/watch.js';
import { describeSubject, type Subject, subjectFilter, subjectPids } from '../subject.js';
import { supervisorPid } from '../supervisor.js';
import type { TrialSpec } from '../trials/groups.js';
import { TrialsGate } from '../trials/gate.js';
import { TrialSet } from '../trials/trial-set.js';

export interface MonitorOptions {
  config: ResolvedConfig;
  subject: Subject;
  logPath: string;
  ruleset: Ruleset;
  ruleFiles: string[];
  trial?: string;
  /** run --trials-under: the subject is the parent, and each sandbox under it one trial */
  trials?: TrialSpec;
  /** --sign-key, read at start: seal records go into the log */
  signing?: SigningKey;
  /** --metrics and --nats, opened before the monitor (outputs/open.ts); closed by stop() */
  outputs?: Outputs;
  /** the process sensor (commands/setup.ts chose it); default eBPF */
  sensor?: SensorChoice;
  /**
   * where the subject is started to work (exec: its working folder, the folders its command
   * names): with the poll, watched from the start for copies too quick for a pass
   */
  workFolders?: string[];
}

/** the parts, and what the start-up steps add to them (null until their step ran) */
export interface Parts {
  readonly o: MonitorOptions;
  readonly startedAt: number;
  readonly log: AuditLog;
  readonly trials: TrialSet | null;
  /** under --trials-under: what the kernel let through that is no trial's goes no further */
  readonly gate: TrialsGate | null;
  readonly scope: Scope;
  readonly table: ProcessTable;
  readonly sensor: EbpfSensor | PollSensor;
  readonly registry: WeightRegistry;
  readonly tracker: WeightsTracker;
  readonly ports: PortPoller;
  readonly probes: ProbeScheduler;
  readonly orphans: OrphanCheck;
  readonly scans: ScanTracker;
  readonly disk: DiskWatch;
  readonly pipeline: Pipeline;
  /** the daemon's own files: log, rules, config, keys (a subject writing one is tampering) */
  readonly monitorFiles: string[];
  /** the sensor reports read-only opens of small files (a rule loaded at start asked for them) */
  readonly allOpens: boolean;
  watcher: FolderWatcher | null;
  gpu: GpuSensor | null;
  /** the GPU sensor answers (false from its trouble until it recovers) */
  gpuUp: boolean;
  /** the BPF LSM guard, where the kernel lets it load */
  guard: LsmGuard | null;
  /** what refuses the subject's attacks on the monitor (for the trial's start record, doctor, audit) */
  guardStatus: GuardStatus;
  /** the dead-man's switch: if this process dies or is stopped, the subject does not run on unwatched */
  deadman: Deadman | null;
  stream: StreamServer | null;
  /** a token file this daemon generated (removed at stop) */
  tokenFile: string | undefined;
  control: ControlServer | null;
  operator: Operator | null;
  /** the registered weight files: the copy gate holds the subject processes that read them */
  weightPaths: string[];
  /** when the process sensor last could not see everything (ms since the epoch) */
  sensorBlindAt: number;
}

/** this process, and the supervisor `redline exec` runs it under (supervisor.ts) */
export function ownSide(): number[] {
  const sup = supervisorPid();
  return sup === null ? [process.pid] : [process.pid, sup];
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function processSensor(o: MonitorOptions, scope: Scope, trials: TrialSet | null, registry: WeightRegistry): EbpfSensor | PollSensor {
  // read-only opens of small files are dropped in the kernel unless a rule looks at them
  const allOpens = o.ruleset.rules.some((r) => r.readsOpens);
  if (o.sensor?.kind === 'poll') {
    const watched = [...o.config.allowPids, ...o.config.protectPids];
    return new PollSensor({
      inScope: (pid) => scope.isSubject(pid),
      intervalMs: o.config.pollIntervalMs,
      watched: () => watched,
      hostWide: (dev, ino) => registry.byInode(dev, ino) !== undefined,
      // (a uid's or a tree's members are found by the poll's own pass)
      ...(trials || (o.subject.kind !== 'uid' && o.subject.kind !== 'tree') ? { members: () => scope.pids() } : {}),
      ...(o.config.pollSource ? { source: o.config.pollSource } : {}),
    });
  }
  const filter = subjectFilter(o.subject);
  if (!filter) throw new Error(`the eBPF sensor cannot filter on ${describeSubject(o.subject)}: it needs a cgroup v2 group or a uid`);
  // the kernel's scan accounting only when a loaded rule looks at scans
  return new EbpfSensor({ filter, allOpens, scans: o.ruleset.rules.some((r) => r.events.includes('scan')) });
}

export function buildParts(o: MonitorOptions): Parts {
  const log = AuditLog.open(o.logPath, {
    group: o.config.logGroup === undefined ? undefined : (groupId(o.config.logGroup) ?? undefined),
    ...(o.signing ? { seal: { key: o.signing, everyRecords: o.config.sealRecords, everyMs: o.config.sealIntervalMs } } : {}),
  });
  // (the pipeline is made last: the trials ask it for the mode and the counts only later)
  let pipeline: Pipeline | null = null;
  const pipe = (): Pipeline => pipeline as Pipeline;
  let drain: () => Promise<void> = async () => {};
  const trials = o.trials
    ? new TrialSet({
        spec: o.trials, mount: findCgroupV2Mount() ?? '/sys/fs/cgroup', sink: log, mode: () => pipe().mode, failClosed: o.config.failClosed,
        lost: () => pipe().counts.lost, drain: () => drain(), strays: () => pipe().strayPids(), report: (where, err) => pipe().reportError(where, err),
      })
    : null;
  const scope = new Scope(o.subject, trials);
  const registry = new WeightRegistry();
  // (and `redline exec`'s supervisor, this process's parent: supervisor.ts)
  const table = new ProcessTable({ isSubject: (pid) => scope.isSubject(pid), allowPids: o.config.allowPids, protectPids: o.config.protectPids, monitorPids: ownSide() });
  const sensor = processSensor(o, scope, trials, registry);
  const parentOf = (pid: number) => table.get(pid)?.ppid ?? 0;
  const tracker = new WeightsTracker({ registry, loadShare: o.config.loadShare, parentOf, ...(sensor instanceof PollSensor ? { unseenCopiesSince: Date.now() } : {}) });
  // the strays too: a replica a host service started for the subject listens like any other
  // (a process tree is read from the poll's own view: finding it in /proc reads every process)
  const members = () => (!trials && sensor instanceof PollSensor && o.subject.kind === 'tree' ? sensor.subjectPids() : trials ? scope.pids() : subjectPids(o.subject));
  const ports = new PortPoller({ pids: () => [...members(), ...pipe().strayPids()], intervalMs: o.config.portIntervalMs });
  const probes = new ProbeScheduler({ probeTimeoutMs: o.config.probeTimeoutMs, originals: () => o.config.allowPids });
  // a changed file is the model's when it is one of its registered files (a copy made since is not)
  const areas = new ProtectedAreas(
    {
      modelFile: (dev, ino) => {
        const w = registry.byInode(dev, ino);
        return w && w.generation === 0 ? w.path : null;
      },
      modelPath: (path) => registry.isOriginalPath(path),
    },
    o.config.protectPaths,
    // the folders given as the weights: the model's own, its config and tokenizer too
    o.config.weights.filter((p) => isDirectory(p)),
  );
  const disk = new DiskWatch({ minFree: o.config.diskFreeMin, parentOf });
  const orphans = new OrphanCheck();
  const scans = new ScanTracker();
  const logFile = resolve(o.logPath);
  const monitorFiles = [logFile, ...(o.outputs?.nats ? [`${logFile}.nats-spool`] : []), ...o.ruleFiles.map((f) => resolve(f)), ...(o.config.configFile ? [o.config.configFile] : []), ...(o.config.signKey ? [o.config.signKey] : [])];
  const metrics = o.outputs?.metrics;
  pipeline = new Pipeline({
    table, ruleset: o.ruleset, subject: o.subject, sink: log, mode: o.config.mode, trial: o.trial, failClosed: o.config.failClosed, recordEvents: o.config.recordEvents,
    stages: { ingress: new Ingress({ monitorPaths: monitorFiles, areas, parentOf }), weights: tracker, ports, probes, orphans, disk, scans },
    ...(trials ? { trials } : {}),
    ...(metrics ? { counted: (source: string) => metrics.event(source) } : {}),
  });
  const gate = trials ? new TrialsGate({ known: (pid) => table.get(pid)?.subject === true, inTrials: (pid) => scope.isSubject(pid) }) : null;
  const parts: Parts = {
    o, startedAt: Date.now(), log, trials, gate, scope, table, sensor, registry, tracker, ports, probes, orphans, scans, disk, pipeline, monitorFiles,
    allOpens: o.ruleset.rules.some((r) => r.readsOpens),
    watcher: null, gpu: null, gpuUp: true, guard: null, guardStatus: { guard: 'detect-only', guard_reason: 'not started' }, deadman: null,
    stream: null, tokenFile: undefined, control: null, operator: null, weightPaths: [], sensorBlindAt: Number.NEGATIVE_INFINITY,
  };
  drain = () => drainSensor(parts);
  return parts;
}

/** how long the end of a trial waits for the sensor to deliver what it saw */
const DRAIN_MS = 15_000;

/**
 * Every line the sensor has printed so far is read and judged before the trial ends or the
 * daemon stops: a subject that ends with a burst behind it is judged on all of it. The
 * ping's echo comes after them; if it does not come in time, what is still unread is lost,
 * and the log says so (a high monitor.degraded alert, the subject frozen in enforce mode).
 */
export async function drainSensor(p: Pick<Parts, 'sensor' | 'pipeline'>): Promise<void> {
  if (!p.sensor.health().running) return;
  if (await p.sensor.ping(DRAIN_MS)) return;
  p.pipeline.sensorTrouble({ sensor: p.sensor.name, reason: 'timeout', detail: `the sensor had not caught up ${DRAIN_MS} ms after the end (no echo from ${p.sensor.silentParts.join(' and ') || 'it'}): events it had not delivered by then are lost` });
}
