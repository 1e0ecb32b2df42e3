// One monitored subject: the audit log, process table, sensor and pipeline, set up in the
// order that loses nothing (log first, sensor attached before the subject acts).
import { groupId } from './config/group.js';
import { existsSync, rmSync, statSync } from 'node:fs';
import { hostname, setPriority } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { ResolvedConfig } from './config/options.js';
import { loadRules } from './engine/load.js';
import type { Ruleset } from './engine/ruleset.js';
import { formatProblem } from './events.js';
import { findCgroupV2Mount, groupPids, readEvents } from './cgroup.js';
import { lastMatching } from './audit/tail.js';
import { DEADMAN_BEAT_MS, DEADMAN_GRACE_MS, DEADMAN_POLL_MS, Deadman } from './deadman.js';
import { supervisorPid } from './supervisor.js';
import { Ingress } from './ingress.js';
import { onCrash } from './crash.js';
import { controlHandler } from './control/commands.js';
import type { ControlRequest } from './control/server.js';
import { Operator } from './control/operator.js';
import { ControlServer } from './control/server.js';
import { ensureToken, StreamServer } from './outputs/stream.js';
import { AuditLog } from './outputs/audit-log.js';
import { closeOutputs, type Outputs } from './outputs/open.js';
import type { SigningKey } from './outputs/seal.js';
import { Pipeline } from './pipeline.js';
import { ProcessTable } from './process-table.js';
import { EbpfSensor } from './sensors/ebpf/index.js';
import type { SensorChoice } from './sensors/choose.js';
import { POLL_BLIND, starvedByPoll } from './sensors/feeds.js';
import { PollSensor } from './sensors/poll/index.js';
import { PortPoller } from './sensors/ports/poll.js';
import { ProbeScheduler } from './sensors/ports/probes.js';
import { OrphanCheck } from './sensors/proc/orphans.js';
import { ProtectedAreas } from './sensors/system/areas.js';
import { DiskWatch } from './sensors/system/disk.js';
import { ScanTracker } from './sensors/system/scans.js';
import { type Sensor, SensorStartError } from './sensors/sensor.js';
import type { SensorEvent } from './events.js';
import { GpuSensor, gpuUnavailableReason } from './sensors/gpu/index.js';
import { type GuardStatus, LsmGuard, seccompEntry } from './guard/index.js';
import { closeHashers } from './sensors/weights/fingerprint.js';
import { WeightRegistry } from './sensors/weights/registry.js';
import { WeightsTracker } from './sensors/weights/tracker.js';
import { FolderWatcher } from './sensors/weights/watch.js';
import { useParents } from './sensors/weights/paths.js';
import { describeSubject, type Subject, subjectContains, subjectFilter, subjectPids } from './subject.js';
import type { TrialSpec } from './trials/groups.js';
import { TrialSet } from './trials/trial-set.js';
import { VERSION } from './version.js';
import { warmUp } from './warmup.js';

/** the daemon's and its sensor's nice value once the subject runs (root may lower it; -20 is the floor) */
const MONITOR_NICE = -10;

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

const SIGNUM: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
// how long to wait for the sensor to report who sent us a signal
const SENDER_GRACE_MS = 300;
/** a sensor blind this long before a stop signal (or any time after it) cannot vouch for its sender */
const SENDER_BLIND_MS = 1000;

/** this process, and the supervisor `redline exec` runs it under (supervisor.ts) */
function ownSide(): number[] {
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

/** how long the end of a trial may wait for the weights tracker's work under way (a derived copy takes 1.5 s to decide) */
const SETTLE_MS = 3000;
/** with the poll, how long the end of a trial may wait for the folder watcher's last looks */
const POLL_SETTLE_MS = 5000;
/** the copy gate: a held writer is judged for at least this long, and at most GATE_MAX_MS */
const GATE_MIN_MS = 30;
const GATE_MAX_MS = 500;
/** the pin: how long a writer outside the subject is held at most while its file is opened */
const PIN_MAX_MS = 200;
/** how long the end of a trial waits for the sensor to deliver what it saw */
const DRAIN_MS = 15_000;

export class Monitor {
  readonly log: AuditLog;
  readonly table: ProcessTable;
  readonly sensor: EbpfSensor | PollSensor;
  readonly registry = new WeightRegistry();
  readonly tracker: WeightsTracker;
  private watcher: FolderWatcher | null = null;
  gpu: GpuSensor | null = null;
  /** the GPU sensor answers (false from its trouble until it recovers) */
  private gpuUp = true;
  readonly pipeline: Pipeline;
  /** the ports sensor (/proc/net) */
  readonly ports: PortPoller;
  readonly probes: ProbeScheduler;
  readonly orphans = new OrphanCheck();
  /** the subject's sweeps of /proc, ports and folders (system.scan) */
  readonly scans = new ScanTracker();
  /** filesystems the subject fills (system.damage) */
  readonly disk: DiskWatch;
  stream: StreamServer | null = null;
  /** a token file this daemon generated (removed at stop) */
  private tokenFile: string | undefined;
  control: ControlServer | null = null;
  private readonly startedAt = Date.now();
  /** remove the process-wide handlers this daemon installed: signals, and (last) crashes */
  private readonly unhook: (() => void)[] = [];
  private readonly unhookCrash: (() => void)[] = [];
  /** the sensor reports read-only opens of small files (a rule loaded at start asked for them) */
  private readonly allOpens: boolean;
  /** signal decisions still waiting for the sensor to name the sender */
  private readonly pending = new Set<Promise<void>>();
  /** run --trials-under: the sandboxes, each its own trial */
  readonly trials: TrialSet | null = null;
  /** the daemon's own files: log, rules, config, keys (a subject writing one is tampering) */
  private readonly monitorFiles: string[];
  /** the BPF LSM guard, where the kernel lets it load */
  guard: LsmGuard | null = null;
  /** what refuses the subject's attacks on the monitor (for the trial's start record, doctor, audit) */
  guardStatus: GuardStatus = { guard: 'detect-only', guard_reason: 'not started' };

  private constructor(readonly o: MonitorOptions) {
    this.log = AuditLog.open(o.logPath, {
      group: o.config.logGroup === undefined ? undefined : (groupId(o.config.logGroup) ?? undefined),
      ...(o.signing ? { seal: { key: o.signing, everyRecords: o.config.sealRecords, everyMs: o.config.sealIntervalMs } } : {}),
    });
    if (o.trials) {
      this.trials = new TrialSet({
        spec: o.trials, mount: findCgroupV2Mount() ?? '/sys/fs/cgroup', sink: this.log, mode: () => this.pipeline.mode, failClosed: o.config.failClosed,
        lost: () => this.pipeline.counts.lost, drain: () => this.drainSensor(), strays: () => this.pipeline.strayPids(),
        report: (where, err) => this.pipeline.reportError(where, err),
      });
    }
    const trials = this.trials;
    this.table = new ProcessTable({
      // under --trials-under a process is a subject when it is in one of the trials' groups
      isSubject: (pid) => (trials ? trials.containsPid(pid) : subjectContains(o.subject, pid)),
      allowPids: o.config.allowPids,
      protectPids: o.config.protectPids,
      // (and `redline exec`'s supervisor, this process's parent: supervisor.ts)
      monitorPids: ownSide(),
    });
    // read-only opens of small files are dropped in the kernel unless a rule looks at them
    this.allOpens = o.ruleset.rules.some((r) => r.readsOpens);
    if (o.sensor?.kind === 'poll') {
      const watched = [...o.config.allowPids, ...o.config.protectPids];
      this.sensor = new PollSensor({
        inScope: (pid) => (trials ? trials.containsPid(pid) : subjectContains(o.subject, pid)),
        intervalMs: o.config.pollIntervalMs,
        watched: () => watched,
        hostWide: (dev, ino) => this.registry.byInode(dev, ino) !== undefined,
        ...(trials ? { members: () => trials.list().flatMap((t) => groupPids(t.group)) } : o.subject.kind === 'uid' || o.subject.kind === 'tree' ? {} : { members: () => subjectPids(o.subject) }),
        ...(o.config.pollSource ? { source: o.config.pollSource } : {}),
      });
    } else {
      const filter = subjectFilter(o.subject);
      if (!filter) throw new Error(`the eBPF sensor cannot filter on ${describeSubject(o.subject)}: it needs a cgroup v2 group or a uid`);
      // the kernel's scan accounting only when a loaded rule looks at scans
      this.sensor = new EbpfSensor({ filter, allOpens: this.allOpens, scans: o.ruleset.rules.some((r) => r.events.includes('scan')) });
    }
    this.tracker = new WeightsTracker({ registry: this.registry, loadShare: o.config.loadShare, ...(this.sensor instanceof PollSensor ? { unseenCopiesSince: Date.now() } : {}) });
    // the strays too: a replica a host service started for the subject listens like any other
    // (a process tree is read from the poll's own view: finding it in /proc reads every process)
    const sensor = this.sensor;
    const inScope = () => (trials ? trials.list().flatMap((t) => groupPids(t.group)) : sensor instanceof PollSensor && o.subject.kind === 'tree' ? sensor.subjectPids() : subjectPids(o.subject));
    this.ports = new PortPoller({ pids: () => [...inScope(), ...this.pipeline.strayPids()], intervalMs: o.config.portIntervalMs });
    this.probes = new ProbeScheduler({ probeTimeoutMs: o.config.probeTimeoutMs, originals: () => o.config.allowPids });
    // a path named in a mount namespace of its own is reached through the process's root, or its parent's
    useParents((pid) => this.table.get(pid)?.ppid ?? 0);
    // a changed file is the model's when it is one of its registered files (a copy made since is not)
    const areas = new ProtectedAreas(
      {
        modelFile: (dev, ino) => {
          const w = this.registry.byInode(dev, ino);
          return w && w.generation === 0 ? w.path : null;
        },
        modelPath: (path) => this.registry.isOriginalPath(path),
      },
      o.config.protectPaths,
      // the folders given as the weights: the model's own, its config and tokenizer too
      o.config.weights.filter((p) => isDirectory(p)),
    );
    this.disk = new DiskWatch({ minFree: o.config.diskFreeMin, parentOf: (pid) => this.table.get(pid)?.ppid ?? 0 });
    this.monitorFiles = [resolve(o.logPath), ...(o.outputs?.nats ? [`${resolve(o.logPath)}.nats-spool`] : []), ...o.ruleFiles.map((f) => resolve(f)), ...(o.config.configFile ? [o.config.configFile] : []), ...(o.config.signKey ? [o.config.signKey] : [])];
    const ingress = new Ingress(this.monitorFiles, areas);
    this.pipeline = new Pipeline({
      table: this.table, ruleset: o.ruleset, subject: o.subject, sink: this.log, mode: o.config.mode, trial: o.trial, failClosed: o.config.failClosed, recordEvents: o.config.recordEvents,
      stages: { ingress, weights: this.tracker, ports: this.ports, probes: this.probes, orphans: this.orphans, disk: this.disk, scans: this.scans },
      ...(trials ? { trials } : {}),
    });
    this.wireOutputs();
    this.log.on('error', (err: Error) => {
      // the record is queued in memory and retried; say so on stderr (the log itself is failing)
      process.stderr.write(`redline: audit log write failed, records held in memory: ${err.message}\n`);
    });
  }

  /** every record on disk to NATS and the metrics; their trouble to the log as monitor.degraded */
  private wireOutputs(): void {
    const { nats, metrics } = this.o.outputs ?? {};
    if (nats) {
      this.log.on('record', (sealed) => nats.push(sealed.line, sealed.seq, sealed.hash));
      nats.attach({
        degraded: (summary) => this.pipeline.daemonAlert('redline.nats-degraded', 'monitor.degraded', 'medium', summary),
        recovered: (detail) => this.log.append({ kind: 'daemon', phase: 'output-recovered', output: 'nats', detail }),
      });
    }
    if (metrics) {
      this.log.on('record', (sealed) => metrics.record(sealed.line));
      metrics.attach({
        head: () => this.log.head(),
        lost: () => this.pipeline.counts.lost,
        sensorsUp: () => ({ [this.sensor.name]: this.sensor.health().running, ...(this.gpu ? { gpu: this.gpuUp } : {}) }),
        ...(nats ? { nats: () => nats.status() } : {}),
      });
    }
  }

  static async start(o: MonitorOptions): Promise<Monitor> {
    const m = new Monitor(o);
    m.log.append({
      kind: 'daemon',
      phase: 'start',
      version: VERSION,
      host: hostname(),
      daemon_pid: process.pid,
      mode: o.config.mode,
      sensor: m.sensor.name,
      subject: describeSubject(o.subject),
      rules: o.ruleset.rules.length,
      rule_files: o.ruleFiles,
      // a seal follows this record: audit --pubkey checks the log from here on
      sign_key_id: o.signing?.keyId,
    });
    m.catchCrashes();
    // the watchdog starts while the sensor attaches (each takes a while): both are up before the subject
    const watchdog = m.spawnDeadman(o.subject).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    try {
      await m.attach();
    } catch (err) {
      // a daemon that never started must not leave its crash handlers (or its watchdog) behind
      for (const off of m.unhookCrash) off();
      const d = await watchdog;
      if (d instanceof Deadman) d.bye();
      throw err;
    }
    m.adoptFrozen();
    const d = await watchdog;
    // fail closed: in enforce mode (or with --fail-closed) no trial is started without a
    // watchdog, which is all that would freeze it if this daemon died: exec does not start
    // its subject, run does not start watching (systemd tries again)
    if (d instanceof Error && (o.config.mode === 'enforce' || o.config.failClosed)) {
      const what = o.config.command === 'exec' ? 'exec starts no trial' : 'run does not start';
      m.log.append({ kind: 'daemon', phase: 'watchdog', watchdog_pid: null, detail: `the watchdog could not start: ${d.message}; ${o.config.command === 'exec' ? 'the trial is not started' : 'the daemon does not start'}` });
      await m.stop('the watchdog could not start');
      throw new SensorStartError(`the watchdog could not start (${d.message}); in enforce mode or with --fail-closed, ${what} without one`);
    }
    m.armDeadman(d);
    if (m.trials) {
      m.trials.start();
      m.log.append({ kind: 'daemon', phase: 'trials', under: o.trials?.given, parent: o.trials?.parent, pattern: o.trials?.pattern?.source ?? null, trials: m.trials.list().map((t) => t.id) });
    }
    return m;
  }

  /** the table, the weights and every sensor, in the order that loses nothing */
  private async attach(): Promise<void> {
    this.table.seed();
    warmUp(this.o.ruleset);
    for (const s of [this.sensor, this.tracker, this.ports, this.probes, this.orphans, this.disk, this.scans]) this.feed(s);
    // bpftrace takes seconds to compile and attach: it starts while the weights are fingerprinted
    // (the subject starts after both). The poll starts after, as it tells the folder watcher where
    // the subject works, and the watcher is made with the weights.
    const early = this.sensor instanceof PollSensor ? null : this.sensor.start().then(() => null, (err: unknown) => err);
    await this.registerWeights();
    this.sensor.on('restarted', () => {
      this.table.setMonitorPids(this.sensor.ownPids());
      this.guard?.monitor(this.sensor.ownPids());
      this.deadman?.sensors(this.sensor.ownPids());
      this.log.append({ kind: 'daemon', phase: 'sensor-restarted', sensor: this.sensor.name, sensor_pids: this.sensor.ownPids() });
    });
    if (this.sensor instanceof PollSensor) {
      // a copy made between two passes is found where the subject works
      const more = (dir: string) => {
        if (this.watcher?.add(dir, this.startedAt)) this.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'watch', detail: `watching ${dir} too (the subject works there)` });
      };
      this.sensor.on('folder', more);
      // a new socket of the subject's: the ports poll looks now (a server's listen, within a pass)
      this.sensor.on('sockets', () => void this.ports.tick());
      // (and shared memory, a file system in RAM any process can write to)
      for (const dir of [...(this.o.workFolders ?? []), ...(existsSync('/dev/shm') ? ['/dev/shm'] : [])]) this.sensor.folder(dir);
    }
    // the guard loads while the sensor attaches (each takes a while); both are up before the sensor's record
    const guard = this.startGuard();
    const failed = early ? await early : await this.sensor.start();
    await guard;
    if (failed) throw failed;
    this.guard?.monitor(this.sensor.ownPids());
    this.table.setMonitorPids(this.sensor.ownPids());
    if (this.sensor instanceof EbpfSensor) this.sensor.on('held', (h: { pid: number; time: number; fd: number; ino: number; dev: number }) => this.held(h));
    this.setGate(this.o.config.mode);
    if (this.sensor instanceof PollSensor) {
      const blind = Object.entries(POLL_BLIND).map(([type, why]) => ({ type, why }));
      this.log.append({ kind: 'daemon', phase: 'sensor', sensor: this.sensor.name, sensor_pids: [], bytes_by: 'poll', source: this.sensor.source, interval_ms: this.o.config.pollIntervalMs, chosen_because: this.o.sensor?.why, blind_to: blind, inactive_rules: starvedByPoll(this.o.ruleset.rules).filter((r) => r.inactive).map((r) => r.rule), detail: `reading ${this.sensor.source === 'proc' ? '/proc' : 'ps-list'} every ${this.o.config.pollIntervalMs} ms` });
    } else this.log.append({ kind: 'daemon', phase: 'sensor', sensor: this.sensor.name, sensor_pids: this.sensor.ownPids(), bytes_by: this.sensor.bytesBy(), detail: 'probes attached' });
    await this.ports.start();
    this.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'ports', detail: `reading /proc/net every ${this.o.config.portIntervalMs} ms` });
    await this.startGpu();
    await this.startStream();
    await this.startControl();
    injectFault();
    const rotate = () => this.rotateLog();
    process.on('SIGUSR2', rotate);
    this.unhook.push(() => process.off('SIGUSR2', rotate));
  }

  /**
   * The BPF LSM guard, before the subject starts: told the monitor's processes, files, the
   * protected pids and the mode. Where it cannot load, the log says why (detection remains,
   * and exec's seccomp filter refuses what it can).
   */
  private async startGuard(): Promise<void> {
    const filter = subjectFilter(this.o.subject);
    try {
      if (!filter) throw new Error(`the guard needs a cgroup v2 group or a uid as the subject, not ${describeSubject(this.o.subject)}`);
      const g = await LsmGuard.start(filter);
      this.guard = g;
      g.monitor([...ownSide(), ...g.ownPids()]);
      g.protect(this.o.config.protectPids);
      g.files(this.monitorFiles);
      g.mode(this.o.config.mode === 'enforce');
      g.on('event', (ev: SensorEvent) => {
        if (this.admits(ev)) this.pipeline.ingest(ev);
      });
      g.on('trouble', (t) => this.pipeline.sensorTrouble(t));
      this.table.setMonitorPids(g.ownPids());
      this.guardStatus = { guard: 'kernel' };
    } catch (err) {
      const seccomp = this.o.config.command === 'exec' && seccompEntry() !== null;
      const also = seccomp
        ? "; the subject's seccomp filter still refuses its signals, ptrace and scheduling calls aimed at the monitor, bpf() and module loads; its writes to the monitor's files and to cgroups are detected, not refused"
        : '';
      this.guardStatus = { guard: 'detect-only', guard_reason: `${(err as Error).message}${also}` };
    }
    this.log.append({ kind: 'daemon', phase: 'guard', ...this.guardStatus, guard_pid: this.guard?.pid });
  }

  /** every sensor's events and trouble go into the pipeline, and only there */
  private feed(s: Sensor): void {
    s.on('event', (ev) => {
      let admitted = true;
      try {
        admitted = s !== this.sensor || this.admits(ev);
      } catch (err) {
        // the gate failed: the event is judged (never dropped unseen), and the failure reported
        this.pipeline.reportError('trials gate', err);
      }
      if (admitted) this.pipeline.ingest(ev);
      this.o.outputs?.metrics?.event(s.name);
    });
    s.on('trouble', (t) => {
      // the process sensor stopped seeing (died, lost events, hung): who signalled the daemon
      // around now cannot be known from it
      if (s === this.sensor && t.reason !== 'stderr') this.sensorBlindAt = Date.now();
      this.pipeline.sensorTrouble(t);
    });
  }

  /** pids the kernel let through under --trials-under that are in no trial (a sibling service) */
  private readonly outside = new Map<number, true>();

  /**
   * Under --trials-under the kernel lets through everything below the parent; a process in
   * none of the trials' groups (a service beside the sandboxes, the parent's own) goes no
   * further. A trial's process stays one wherever it moves (the table keeps it a subject).
   */
  private admits(ev: SensorEvent): boolean {
    if (!this.trials) return true;
    const inTrial = (pid: number): boolean => {
      if (this.table.get(pid)?.subject) return true;
      if (this.outside.has(pid)) return false;
      if (this.trials?.containsPid(pid)) return true;
      if (this.outside.size >= 65536) this.outside.clear();
      this.outside.set(pid, true);
      return false;
    };
    if (ev.type === 'file_bytes') {
      // counted host-wide: only the subject flag is the kernel's guess to correct
      if (ev.subject && !inTrial(ev.pid)) ev.subject = false;
      return true;
    }
    const admitted = inTrial(ev.pid);
    if (ev.type === 'exit') this.outside.delete(ev.pid);
    return admitted;
  }

  /** when the process sensor last could not see everything (ms since the epoch) */
  private sensorBlindAt = Number.NEGATIVE_INFINITY;

  /**
   * Who sent a stop signal: the subject (the sensor saw it), nobody the subject controls (the
   * sensor saw everything around it and not that), or unknown (the sensor was blind then; the
   * poll sensor always is: signals are not in /proc, and a subject that stops its monitor must
   * not pass for an operator).
   */
  private async senderOf(sig: NodeJS.Signals, at: number): Promise<'subject' | 'operator' | 'unknown'> {
    if (this.sensor instanceof PollSensor) return 'unknown';
    if (this.pipeline.signalledBySubject(SIGNUM[sig] as number)) return 'subject';
    // the sensor answers its ping only after reading every line before it: the subject's
    // signal, had it sent one, included
    const answers = this.sensor.health().running && this.sensorBlindAt < at - SENDER_BLIND_MS && (await this.sensor.ping(SENDER_GRACE_MS));
    if (this.pipeline.signalledBySubject(SIGNUM[sig] as number)) return 'subject';
    return answers && this.sensorBlindAt < at - SENDER_BLIND_MS ? 'operator' : 'unknown';
  }

  /** an error nothing else caught: the subject frozen first (enforce or --fail-closed), then the last records */
  /**
   * A subject group found frozen at start (a watchdog or a crash left it so when the daemon
   * before this one was lost) stays frozen: the daemon goes on from there, fail-closed, and the
   * operator thaws it (`redline thaw`) once the evidence is read.
   */
  private adoptFrozen(): void {
    const s = this.o.subject;
    if (s.kind !== 'cgroup2' || readEvents(s.path).frozen !== 1) return;
    this.pipeline.actions.frozen = true;
    // what the monitor before this one wrote when it was lost (its watchdog's record), if this log has it
    const lost = lastMatching(this.log.path, (r) => r.kind === 'daemon' && r.phase === 'lost' && r.subject === s.path);
    const why = lost ? `the monitor before this one was lost at record ${String(lost.seq)} (${String(lost.reason)})` : 'no record in this log says why (a crash, or a monitor that logged elsewhere)';
    this.log.append({
      kind: 'daemon', phase: 'found-frozen', subject: s.path, pids: groupPids(s.path),
      lost: lost ? { seq: lost.seq, time: lost.time, reason: lost.reason, by: lost.by, trial: lost.trial } : null,
      detail: `the subject was frozen when this daemon started: ${why}; it stays frozen until thawed`,
    });
  }

  /** the dead-man's switch: if this process dies or is stopped, the subject does not run on unwatched */
  deadman: Deadman | null = null;

  private armDeadman(d: Deadman | Error): void {
    if (d instanceof Error) {
      // the daemon still watches; only its own death would go unanswered, and the log says so
      this.pipeline.daemonAlert('redline.watchdog-failed', 'monitor.degraded', 'high', `the watchdog could not start: ${d.message}; if this daemon dies, nothing freezes the subject`);
      return;
    }
    this.deadman = d;
    d.sensors(this.sensor.ownPids());
    // the watchdog freed a held monitor (it never writes the log while this daemon lives): an attack on the monitor
    d.on('resumed', (r) => {
      this.pipeline.daemonAlert('redline.monitor-resumed', 'monitor.tamper', 'critical', r.summary, r.details);
      if (this.pipeline.mode === 'enforce') void this.pipeline.operatorFreeze(r.cause).catch(() => undefined);
    });
    if (d.pid) this.guard?.monitor([d.pid]);
    // protected like the daemon: a subject signalling it is tamper
    if (d.pid) this.table.setMonitorPids([d.pid]);
    this.log.append({ kind: 'daemon', phase: 'watchdog', watchdog_pid: d.pid, poll_ms: DEADMAN_POLL_MS, heartbeat_ms: DEADMAN_BEAT_MS, heartbeat_window_ms: this.o.config.heartbeatWindowMs, grace_ms: this.o.config.command === 'exec' ? DEADMAN_GRACE_MS : undefined });
  }

  private spawnDeadman(s: Subject): Promise<Deadman> {
    // test-only: a watchdog that cannot start (tests/integration/guard.test.ts)
    if (process.env.REDLINE_TEST_FAULT === 'watchdog') return Promise.reject(new Error('fault injected by REDLINE_TEST_FAULT'));
    return Deadman.start({
      daemonPid: process.pid,
      // a glob's parent holds more than the trials (system.slice): its watchdog freezes the matching groups instead (`trials`)
      group: s.kind === 'cgroup2' && !this.o.trials?.pattern ? s.path : null,
      ...(s.kind === 'tree' ? { treeMarker: s.marker } : {}),
      log: resolve(this.o.logPath),
      logGroup: this.o.config.logGroup === undefined ? undefined : (groupId(this.o.config.logGroup) ?? undefined),
      freeze: this.o.config.mode === 'enforce' || this.o.config.failClosed,
      exec: this.o.config.command === 'exec',
      graceMs: DEADMAN_GRACE_MS,
      pollMs: DEADMAN_POLL_MS,
      heartbeatWindowMs: this.o.config.heartbeatWindowMs,
      trial: this.o.trial,
      ...(supervisorPid() ? { supervisorPid: supervisorPid() as number } : {}),
      ...(this.o.trials?.pattern ? { trials: { parent: this.o.trials.parent, pattern: this.o.trials.pattern.source } } : {}),
    });
  }

  /**
   * What a freeze for the monitor's own failure takes: the subject, which under
   * --trials-under is the parent, so its sandboxes (and any made later) freeze together;
   * under a glob the parent holds other services, so each trial's group instead.
   */
  private freezeTargets(): Subject[] {
    if (!this.trials || !this.o.trials?.pattern) return [this.o.subject];
    return this.trials.list().map((t) => ({ kind: 'cgroup2', path: t.group, mount: findCgroupV2Mount() ?? '/sys/fs/cgroup' }));
  }

  private catchCrashes(): void {
    this.unhookCrash.push(
      onCrash({
        // the crash path freezes and logs by itself: the watchdog is told it need not
        freezeFirst: () => {
          this.deadman?.bye();
          return this.pipeline.mode === 'enforce' || this.o.config.failClosed;
        },
        exitCode: this.o.config.command === 'exec' ? 3 : 1,
        subjects: () => this.freezeTargets(),
        pipeline: this.pipeline,
        log: this.log,
      }),
    );
  }

  /** the websocket stream, when configured; a failure to start is an alert, not a stop */
  private async startStream(): Promise<void> {
    const ws = this.o.config.ws;
    if (!ws) return;
    try {
      const { token, file } = ensureToken(this.o.config.wsToken, ws.port);
      this.tokenFile = file;
      // operator tokens (NAME:TOKEN) may also freeze, thaw, kill and switch the mode from the dashboard
      const operators = this.o.config.wsOperatorTokens.map((v) => ({ name: v.slice(0, v.indexOf(':')), token: v.slice(v.indexOf(':') + 1) }));
      const operate = (req: ControlRequest, who: string) => controlHandler(this.operator(), `dashboard:${who}`)(req);
      const stream = new StreamServer({ host: ws.host, port: ws.port, token, logPath: this.log.path, head: () => this.log.head(), seal: () => this.log.lastSeal()?.record ?? null, heartbeatMs: this.o.config.wsHeartbeatMs, operators, control: operate });
      const port = await stream.start();
      this.stream = stream;
      this.log.on('record', (sealed) => stream.publish(sealed));
      this.log.append({ kind: 'daemon', phase: 'output', output: 'websocket', url: `ws://${ws.host.includes(':') ? `[${ws.host}]` : ws.host}:${port}/stream`, token_file: file });
    } catch (err) {
      this.pipeline.daemonAlert('redline.websocket-off', 'monitor.degraded', 'medium', `websocket stream on ${ws.host}:${ws.port} is off: ${(err as Error).message}`);
    }
  }

  /** the control socket, when configured; a failure to start is an alert, not a stop */
  private async startControl(): Promise<void> {
    const path = this.o.config.socket;
    if (!path) return;
    const control = new ControlServer(path, controlHandler(this.operator()));
    try {
      await control.start();
      this.control = control;
      this.log.append({ kind: 'daemon', phase: 'output', output: 'control', socket: path });
    } catch (err) {
      this.pipeline.daemonAlert('redline.control-off', 'monitor.degraded', 'medium', `control socket ${path} is off: ${(err as Error).message}`);
    }
  }

  private operatorInstance: Operator | null = null;

  /** what the control socket and the dashboard's operators act through: one, shared */
  private operator(): Operator {
    this.operatorInstance ??= new Operator({
      pipeline: this.pipeline,
      log: this.log,
      status: () => this.status(),
      reload: () => this.reload(),
      modeChanged: (mode) => {
        this.deadman?.freezeOnLoss(mode === 'enforce' || this.o.config.failClosed);
        this.guard?.mode(mode === 'enforce');
        this.setGate(mode);
      },
      trials: this.trials,
      ...(this.o.trial ? { fixedTrial: this.o.trial } : {}),
    });
    return this.operatorInstance;
  }

  /** SIGUSR2 (logrotate): the same path opened again; the chain continues in the new file */
  rotateLog(): void {
    const before = this.log.head();
    this.log.reopen();
    // the new file is a new inode: the guard refuses writes to it too
    this.guard?.files([this.log.path]);
    this.log.append({ kind: 'daemon', phase: 'log-reopened', continues: before });
  }

  /**
   * The daemon and its sensor run ahead of the subject for the CPU (nice -10): a
   * subject forking as fast as it can would otherwise keep the monitor waiting for a core,
   * and its alerts and freeze late. Called once the subject is running (it must not inherit
   * this); processes the daemon starts later (a restarted sensor, probes) inherit it.
   */
  prioritize(): void {
    const pids = [process.pid, ...this.sensor.ownPids()];
    try {
      for (const pid of pids) setPriority(pid, MONITOR_NICE);
      this.log.append({ kind: 'daemon', phase: 'priority', nice: MONITOR_NICE, pids });
    } catch (err) {
      // not root (or not allowed): the monitor competes with the subject as an equal
      this.log.append({ kind: 'daemon', phase: 'priority', nice: null, pids, detail: (err as Error).message });
    }
  }

  /** what `redline status` prints */
  status(): Record<string, unknown> {
    const sensors = [this.sensor.health(), this.tracker.health(), this.ports.health(), ...(this.watcher ? [this.watcher.health()] : []), ...(this.gpu ? [this.gpu.health()] : [])];
    return {
      version: VERSION,
      daemon_pid: process.pid,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      subject: describeSubject(this.o.subject),
      mode: this.pipeline.mode,
      trial: this.pipeline.trial ?? null,
      frozen: this.pipeline.frozen,
      trials: this.trials?.list().map((t) => ({ id: t.id, cgroup: t.group, frozen: t.actions.frozen, alerts: t.alerts, meta: t.meta })),
      sensors,
      rules: this.pipeline.ruleset.rules.length,
      counts: { events: this.pipeline.counts.events, alerts: this.pipeline.counts.alerts, by_severity: this.pipeline.counts.bySeverity },
      chain: this.log.head(),
      log: this.log.path,
      websocket: this.stream ? { clients: this.stream.clientCount, ...this.stream.counts } : null,
    };
  }

  private reload(): { ok: boolean; rules?: number; errors?: string[] } {
    const res = this.reloadRules();
    return res === true ? { ok: true, rules: this.pipeline.ruleset.rules.length } : { ok: false, errors: res };
  }

  /**
   * Lets what the subject did last reach the log: events still in bpftrace's buffers, link
   * checks, copy matches under way. `exec` calls it once the subject's group is empty,
   * before its verdict.
   */
  async settle(maxMs = SETTLE_MS): Promise<void> {
    await this.drainSensor();
    const t0 = Date.now();
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // with the poll, the folders the subject worked in are looked at once more: what it wrote
    // last, too quick for a pass, is judged before the verdict
    const poll = this.sensor instanceof PollSensor;
    if (poll) this.watcher?.sweepAdded();
    const limit = poll ? Math.max(maxMs, POLL_SETTLE_MS) : maxMs;
    await pause(60);
    while (Date.now() - t0 < limit && (this.tracker.busy() || (poll && this.watcher?.busy()))) await pause(20);
  }

  /**
   * Every line the sensor has printed so far is read and judged before the trial ends or the
   * daemon stops: a subject that ends with a burst behind it is judged on all of it. The
   * ping's echo comes after them; if it does not come in time, what is still unread is lost,
   * and the log says so (a high monitor.degraded alert, the subject frozen in enforce mode).
   */
  private async drainSensor(): Promise<void> {
    if (!this.sensor.health().running) return;
    if (await this.sensor.ping(DRAIN_MS)) return;
    this.pipeline.sensorTrouble({ sensor: this.sensor.name, reason: 'timeout', detail: `the sensor had not caught up ${DRAIN_MS} ms after the end (no echo from ${this.sensor.silentParts.join(' and ') || 'it'}): events it had not delivered by then are lost` });
  }

  /** the registered weight files: the copy gate holds the subject processes that read them */
  private weightPaths: string[] = [];

  /** the copy gate on in enforce mode (not under --trials-under: one sandbox's freeze is not another's) */
  private setGate(mode: 'observe' | 'enforce'): void {
    if (!(this.sensor instanceof EbpfSensor) || this.trials || this.weightPaths.length === 0) return;
    const on = this.sensor.gate(this.weightPaths, mode === 'enforce');
    this.log.append({ kind: 'daemon', phase: 'gate', on: on && mode === 'enforce', files: this.weightPaths.length, detail: on ? undefined : 'no libbpf loader: nothing can hold a writer' });
  }

  /**
   * A reader of the weights was stopped at its first MiB written: it stays stopped while the
   * weights tracker judges what it wrote (at least GATE_MIN_MS, at most GATE_MAX_MS); then it
   * is resumed, unless an alert froze the subject meanwhile (it stays held, frozen).
   */
  private held(h: { pid: number; time: number; fd: number; ino: number; dev: number }): void {
    const t0 = performance.now();
    if (!this.table.get(h.pid)?.subject) return this.pinned(h, t0);
    const check = () => {
      const ms = performance.now() - t0;
      if (!this.pipeline.frozen && ms < GATE_MAX_MS && (ms < GATE_MIN_MS || this.tracker.busy())) {
        setTimeout(check, 5);
        return;
      }
      const frozen = this.pipeline.frozen;
      if (!frozen) {
        try {
          process.kill(h.pid, 'SIGCONT');
        } catch {
          // gone meanwhile
        }
      }
      this.log.append({ kind: 'daemon', phase: 'gate-held', pid: h.pid, fd: h.fd, held_ms: Math.round(ms * 10) / 10, outcome: frozen ? 'frozen' : 'resumed', trial: this.o.trial });
    };
    setTimeout(check, 5);
  }

  /**
   * A reader of the weights outside the subject was stopped at its first MiB written to a file:
   * resumed as soon as the weights tracker holds that file open (a short-lived writer, a host
   * job that copies and exits, can then be gone before the copy is matched), at most PIN_MAX_MS,
   * whatever else happens: it is not the subject's to freeze.
   */
  private pinned(h: { pid: number; fd: number; ino: number; dev: number }, t0: number): void {
    const check = () => {
      const ms = performance.now() - t0;
      const pinned = this.tracker.pinned(h.dev, h.ino);
      if (!pinned && ms < PIN_MAX_MS) return void setTimeout(check, 2);
      try {
        process.kill(h.pid, 'SIGCONT');
      } catch {
        // gone meanwhile
      }
      this.log.append({ kind: 'daemon', phase: 'pin-held', pid: h.pid, fd: h.fd, held_ms: Math.round(ms * 10) / 10, outcome: pinned ? 'pinned' : 'not pinned', trial: this.o.trial });
    };
    setImmediate(check);
  }

  /** fingerprints --weights before the subject starts; what was registered goes in the log */
  private async registerWeights(): Promise<void> {
    if (this.o.config.weights.length === 0) return;
    const t0 = performance.now();
    const res = await this.registry.registerPaths(this.o.config.weights);
    this.log.append({
      kind: 'daemon',
      phase: 'weights',
      files: res.files.map((f) => ({ path: f.path, size: f.fp.size, format: f.fp.format, dev: f.fp.dev, ino: f.fp.ino })),
      skipped: res.skipped,
      ms: Math.round(performance.now() - t0),
    });
    this.weightPaths = res.files.map((f) => f.path);
    await this.startWatcher(res.files.map((f) => dirname(f.path)));
  }

  private async startWatcher(weightFolders: string[]): Promise<void> {
    const folders = [...new Set([...this.o.config.watch, ...weightFolders])];
    if (folders.length === 0) return;
    // (with the poll, nothing else claims a new file within the half second eBPF gets: one pass)
    const settleMs = this.o.sensor?.kind === 'poll' ? this.o.config.pollIntervalMs : undefined;
    const w = new FolderWatcher({ registry: this.registry, folders, claimed: (dev, ino, path) => this.tracker.claimed(dev, ino, path), ...(settleMs === undefined ? {} : { settleMs }) });
    this.feed(w);
    try {
      await w.start();
      this.watcher = w;
      this.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'watch', detail: `watching ${folders.join(', ')}` });
    } catch (err) {
      this.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'watch', detail: `off: ${(err as Error).message}` });
    }
  }

  /** the GPU sensor runs where nvidia-smi does; elsewhere the log says why it is off */
  private async startGpu(): Promise<void> {
    const nvidiaSmi = this.o.config.nvidiaSmi;
    const why = gpuUnavailableReason(nvidiaSmi);
    if (why) {
      this.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'gpu', detail: `off: ${why}` });
      return;
    }
    const gpu = new GpuSensor({ nvidiaSmi, allowPids: [...this.o.config.allowPids], intervalMs: this.o.config.gpuIntervalMs, replicaShare: this.o.config.gpuReplicaShare });
    this.feed(gpu);
    gpu.on('recovered', (r: { detail: string }) => {
      this.gpuUp = true;
      this.log.append({ kind: 'daemon', phase: 'sensor-recovered', sensor: 'gpu', detail: r.detail });
    });
    gpu.on('trouble', (t: { reason: string }) => {
      if (t.reason !== 'stderr') this.gpuUp = false;
    });
    try {
      await gpu.start();
      this.gpu = gpu;
      this.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'gpu', detail: `polling ${nvidiaSmi}` });
    } catch (err) {
      this.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'gpu', detail: `off: ${(err as Error).message}` });
    }
  }

  /**
   * SIGTERM/SIGINT from a subject process is tampering (the rule raises it); from anyone
   * else it stops the daemon. Node does not say who sent a signal, so ask the sensor.
   */
  onSignals(stop: (signal: NodeJS.Signals) => void, hup?: () => void): void {
    const on = (sig: NodeJS.Signals, fn: () => void) => {
      process.on(sig, fn);
      this.unhook.push(() => process.off(sig, fn));
    };
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as NodeJS.Signals[]) {
      on(sig, () => {
        const at = Date.now();
        const decided = new Promise<void>((resolve) => {
          setTimeout(() => {
            void this.decide(sig, at, stop, hup).finally(() => {
              this.pending.delete(decided);
              resolve();
            });
          }, SENDER_GRACE_MS);
        });
        this.pending.add(decided);
      });
    }
  }

  /** a stop or reload signal, once the sensor had its chance to name the sender */
  private async decide(sig: NodeJS.Signals, at: number, stop: (signal: NodeJS.Signals) => void, hup?: () => void): Promise<void> {
    const sender = await this.senderOf(sig, at);
    if (sender === 'subject') {
      this.log.append({ kind: 'daemon', phase: 'signal-ignored', signal: sig, reason: 'sent by a subject process' });
      return;
    }
    if (this.stopped) return;
    if (sender === 'unknown' && sig !== 'SIGHUP') {
      // never taken for an operator's stop: the subject may have blinded the sensor and sent
      // it in one breath. The daemon stops, the trial tripped; in enforce mode (or with
      // --fail-closed) the subject is frozen first and left so, not running unwatched.
      const blind = this.sensor instanceof PollSensor ? ', and the poll sensor cannot see signals' : ' while its process sensor was blind';
      this.log.append({ kind: 'daemon', phase: 'signal-unattributed', signal: sig, reason: 'the process sensor could not see who sent it' });
      this.pipeline.daemonAlert('redline.stop-by-unknown-sender', 'monitor.tamper', 'critical', `${sig} reached the daemon${blind}: the sender is unknown, and may be the subject`, { signal: sig });
      if (this.pipeline.mode === 'enforce' || this.o.config.failClosed) await this.pipeline.operatorFreeze('stop by unknown sender').catch(() => undefined);
    }
    if (sig === 'SIGHUP') hup?.();
    else stop(sig);
  }

  /** dry-run the rule files; swap only when they load without error (else: the problems) */
  reloadRules(): true | string[] {
    const res = loadRules(this.o.config.rules);
    if (!res.ruleset) {
      const why = res.errors.map(formatProblem).join('; ');
      this.pipeline.daemonAlert('redline.rules-reload-failed', 'monitor.degraded', 'critical', `rule reload failed, the old rules stay: ${why}`, { errors: res.errors });
      return res.errors.map(formatProblem);
    }
    this.pipeline.ruleset = res.ruleset;
    // the kernel program is fixed at start: a rule that now wants read-only opens sees them after a restart
    const blind = this.allOpens ? [] : res.ruleset.rules.filter((r) => r.readsOpens).map((r) => `${r.file}:${r.line}: rule ${r.id} looks at read-only opens, which the running sensor drops in the kernel until redline restarts`);
    this.log.append({ kind: 'daemon', phase: 'rules-reloaded', rules: res.ruleset.rules.length, rule_files: res.files, warnings: [...res.warnings.map(formatProblem), ...blind] });
    return true;
  }

  private stopped = false;

  async stop(reason: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.deadman?.bye();
    for (const off of this.unhook) off();
    await Promise.all(this.pending);
    // each sandbox still running ends with the daemon, its verdict on what was seen
    await this.trials?.stop('daemon stopped');
    await this.drainSensor();
    await this.ports.stop();
    await this.probes.stop();
    await this.sensor.stop();
    await this.guard?.stop();
    await this.tracker.stop();
    await this.disk.stop();
    await this.watcher?.stop();
    await this.gpu?.stop();
    await closeHashers();
    this.log.append({ kind: 'daemon', phase: 'stop', reason, events: this.pipeline.counts.events, alerts: this.pipeline.counts.alerts, lost_events: this.pipeline.counts.lost });
    // the stop record reaches the stream's clients before they are told the daemon stopped
    await this.stream?.stop();
    if (this.tokenFile) rmSync(this.tokenFile, { force: true });
    await this.control?.stop();
    this.log.close();
    // after the last record: NATS gets what is queued (the rest waits in its spool), then the metrics close
    if (this.o.outputs) await closeOutputs(this.o.outputs);
    // crashes are caught until the last record is written
    for (const off of this.unhookCrash) off();
    const unwritten = this.log.pendingLines();
    if (unwritten.length > 0) {
      // the disk refused them; the operator's terminal or journal is the last place left
      process.stderr.write(`redline: ${unwritten.length} audit records could not be written to ${this.log.path}; they follow:\n`);
      for (const line of unwritten) process.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
    }
  }
}

/**
 * Test-only: REDLINE_TEST_FAULT=uncaught throws, a moment after start, where nothing catches
 * it, so the tests can prove the crash path freezes the subject and writes its last record.
 */
function injectFault(): void {
  if (process.env.REDLINE_TEST_FAULT !== 'uncaught') return;
  setTimeout(() => {
    throw new Error('fault injected by REDLINE_TEST_FAULT');
  }, Number(process.env.REDLINE_TEST_FAULT_MS ?? 300));
}
