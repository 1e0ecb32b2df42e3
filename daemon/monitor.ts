// One monitored subject: its parts (monitor/parts.ts) started as a list of steps, in the order
// that loses nothing (log first, sensor attached before the subject acts), each with its
// teardown. A step that fails undoes the ones before it; stop() undoes them all.
import { existsSync, rmSync } from 'node:fs';
import { hostname, setPriority } from 'node:os';
import { lastMatching } from './audit/tail.js';
import { groupPids, readEvents } from './cgroup.js';
import { Deadman } from './deadman.js';
import { loadRules } from './engine/load.js';
import { formatProblem } from './events.js';
import type { LsmGuard } from './guard/index.js';
import { closeOutputs } from './outputs/open.js';
import { EbpfSensor } from './sensors/ebpf/index.js';
import { PollSensor } from './sensors/poll/index.js';
import { SensorStartError } from './sensors/sensor.js';
import { closeHashers } from './sensors/weights/fingerprint.js';
import { describeSubject } from './subject.js';
import { VERSION } from './version.js';
import { warmUp } from './warmup.js';
import { held, setGate } from './monitor/copy-gate.js';
import { rotateLog, startControl, startStream, wireOutputs } from './monitor/outputs.js';
import { buildParts, drainSensor, type MonitorOptions, type Parts } from './monitor/parts.js';
import { feed, followPoll, registerWeights, sensorRecord, startGpu, startGuard } from './monitor/start-sensors.js';
import { status } from './monitor/status.js';
import { Steps } from './monitor/steps.js';
import { StopSignals } from './monitor/stop-signals.js';
import { armDeadman, catchCrashes, spawnDeadman } from './monitor/watchdog.js';

export type { MonitorOptions } from './monitor/parts.js';

/** the daemon's and its sensor's nice value once the subject runs (root may lower it; -20 is the floor) */
const MONITOR_NICE = -10;
/** how long the end of a trial may wait for the weights tracker's work under way (a derived copy takes 1.5 s to decide) */
const SETTLE_MS = 3000;
/** with the poll, how long the end of a trial may wait for the folder watcher's last looks */
const POLL_SETTLE_MS = 5000;

export class Monitor {
  private readonly p: Parts;
  /** what sees: torn down before the stop record */
  private readonly sensing = new Steps();
  /** the log, the crash hooks and the outputs: torn down after it */
  private readonly serving = new Steps();
  private readonly signals: StopSignals;
  private stopped = false;

  private constructor(o: MonitorOptions) {
    this.p = buildParts(o);
    this.signals = new StopSignals(this.p, () => this.stopped);
    wireOutputs(this.p);
  }

  get log(): Parts['log'] {
    return this.p.log;
  }
  get pipeline(): Parts['pipeline'] {
    return this.p.pipeline;
  }
  get sensor(): Parts['sensor'] {
    return this.p.sensor;
  }
  get guard(): LsmGuard | null {
    return this.p.guard;
  }
  get guardStatus(): Parts['guardStatus'] {
    return this.p.guardStatus;
  }
  get deadman(): Deadman | null {
    return this.p.deadman;
  }

  static async start(o: MonitorOptions): Promise<Monitor> {
    const m = new Monitor(o);
    try {
      await m.up();
    } catch (err) {
      // a daemon that never started leaves nothing behind: no sensor, hook or watchdog
      await m.sensing.teardown(() => undefined);
      await m.serving.teardown(() => undefined);
      throw err;
    }
    return m;
  }

  /** the start-up, step by step */
  private async up(): Promise<void> {
    const { p, sensing, serving } = this;
    const { o } = p;
    // crashes are caught until the last record is written
    await serving.run('crash hooks', () => catchCrashes(p), (off) => off());
    await serving.run('start record', () => this.startRecord(), () => p.log.close());
    sensing.add('hash workers', () => closeHashers());
    // the watchdog starts while the sensor attaches (each takes a while): both are up before the subject
    const watchdog = spawnDeadman(p).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    sensing.add('watchdog', async () => {
      const d = await watchdog;
      if (d instanceof Deadman) d.bye();
    });
    await sensing.run('process table', () => {
      p.table.seed();
      warmUp(o.ruleset);
    });
    for (const s of [p.sensor, p.tracker, p.ports, p.probes, p.orphans, p.disk]) feed(p, s);
    sensing.add('analyzers', async () => {
      await p.probes.stop();
      await p.tracker.stop();
      await p.disk.stop();
    });
    // bpftrace takes seconds to compile and attach: it starts while the weights are fingerprinted
    // (the subject starts after both). The poll starts after, as it tells the folder watcher where
    // the subject works, and the watcher is made with the weights.
    const early = p.sensor instanceof PollSensor ? null : p.sensor.start().then(() => null, (err: unknown) => err);
    sensing.add('process sensor', () => p.sensor.stop());
    await sensing.run('weights', () => registerWeights(p), () => p.watcher?.stop());
    p.sensor.on('restarted', () => this.sensorRestarted());
    if (p.sensor instanceof PollSensor) followPoll(p, p.sensor, [...(o.workFolders ?? []), ...(existsSync('/dev/shm') ? ['/dev/shm'] : [])]);
    // the guard loads while the sensor attaches (each takes a while); both are up before the sensor's record
    const guard = startGuard(p);
    sensing.add('guard', async () => {
      await guard;
      await p.guard?.stop();
    });
    await sensing.run('process sensor up', async () => {
      const failed = early ? await early : await p.sensor.start();
      await guard;
      if (failed) throw failed;
      p.guard?.monitor(p.sensor.ownPids());
      p.table.setMonitorPids(p.sensor.ownPids());
      if (p.sensor instanceof EbpfSensor) p.sensor.on('held', (h) => held(p, h));
      setGate(p, o.config.mode);
      sensorRecord(p);
    });
    await sensing.run('ports', async () => {
      await p.ports.start();
      p.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'ports', detail: `reading /proc/net every ${o.config.portIntervalMs} ms` });
    }, () => p.ports.stop());
    await sensing.run('gpu', () => startGpu(p), () => p.gpu?.stop());
    await serving.run('websocket', () => startStream(p, () => this.reload()), () => this.stopStream());
    await serving.run('control socket', () => startControl(p, () => this.reload()), () => p.control?.stop());
    injectFault();
    await sensing.run('log rotation', () => {
      const rotate = () => rotateLog(p);
      process.on('SIGUSR2', rotate);
      return rotate;
    }, (rotate) => process.off('SIGUSR2', rotate));
    this.adoptFrozen();
    await this.watchdogUp(await watchdog);
    if (p.trials) {
      p.trials.start();
      p.log.append({ kind: 'daemon', phase: 'trials', under: o.trials?.given, parent: o.trials?.parent, pattern: o.trials?.pattern?.source ?? null, trials: p.trials.list().map((t) => t.id) });
    }
  }

  private startRecord(): void {
    const { o } = this.p;
    this.p.log.append({
      kind: 'daemon',
      phase: 'start',
      version: VERSION,
      host: hostname(),
      daemon_pid: process.pid,
      mode: o.config.mode,
      sensor: this.p.sensor.name,
      subject: describeSubject(o.subject),
      rules: o.ruleset.rules.length,
      rule_files: o.ruleFiles,
      // a seal follows this record: audit --pubkey checks the log from here on
      sign_key_id: o.signing?.keyId,
    });
  }

  /**
   * Fail closed: in enforce mode (or with --fail-closed) no trial is started without a
   * watchdog, which is all that would freeze it if this daemon died: exec does not start
   * its subject, run does not start watching (systemd tries again).
   */
  private async watchdogUp(d: Deadman | Error): Promise<void> {
    const { o } = this.p;
    if (d instanceof Error && (o.config.mode === 'enforce' || o.config.failClosed)) {
      const what = o.config.command === 'exec' ? 'exec starts no trial' : 'run does not start';
      this.p.log.append({ kind: 'daemon', phase: 'watchdog', watchdog_pid: null, detail: `the watchdog could not start: ${d.message}; ${o.config.command === 'exec' ? 'the trial is not started' : 'the daemon does not start'}` });
      await this.stop('the watchdog could not start');
      throw new SensorStartError(`the watchdog could not start (${d.message}); in enforce mode or with --fail-closed, ${what} without one`);
    }
    armDeadman(this.p, d);
  }

  private sensorRestarted(): void {
    const { p } = this;
    p.table.setMonitorPids(p.sensor.ownPids());
    p.guard?.monitor(p.sensor.ownPids());
    p.deadman?.sensors(p.sensor.ownPids());
    p.log.append({ kind: 'daemon', phase: 'sensor-restarted', sensor: p.sensor.name, sensor_pids: p.sensor.ownPids() });
  }

  /**
   * A subject group found frozen at start (a watchdog or a crash left it so when the daemon
   * before this one was lost) stays frozen: the daemon goes on from there, fail-closed, and the
   * operator thaws it (`redline thaw`) once the evidence is read.
   */
  private adoptFrozen(): void {
    const s = this.p.o.subject;
    if (s.kind !== 'cgroup2' || readEvents(s.path).frozen !== 1) return;
    this.p.pipeline.actions.frozen = true;
    // what the monitor before this one wrote when it was lost (its watchdog's record), if this log has it
    const lost = lastMatching(this.p.log.path, (r) => r.kind === 'daemon' && r.phase === 'lost' && r.subject === s.path);
    const why = lost ? `the monitor before this one was lost at record ${String(lost.seq)} (${String(lost.reason)})` : 'no record in this log says why (a crash, or a monitor that logged elsewhere)';
    this.p.log.append({
      kind: 'daemon', phase: 'found-frozen', subject: s.path, pids: groupPids(s.path),
      lost: lost ? { seq: lost.seq, time: lost.time, reason: lost.reason, by: lost.by, trial: lost.trial } : null,
      detail: `the subject was frozen when this daemon started: ${why}; it stays frozen until thawed`,
    });
  }

  /** SIGTERM/SIGINT/SIGHUP: a subject's is tampering, anyone else's stops (or reloads) the daemon */
  onSignals(stop: (signal: NodeJS.Signals) => void, hup?: () => void): void {
    this.signals.listen(stop, hup);
  }

  /**
   * The daemon and its sensor run ahead of the subject for the CPU (nice -10): a
   * subject forking as fast as it can would otherwise keep the monitor waiting for a core,
   * and its alerts and freeze late. Called once the subject is running (it must not inherit
   * this); processes the daemon starts later (a restarted sensor, probes) inherit it.
   */
  prioritize(): void {
    const pids = [process.pid, ...this.p.sensor.ownPids()];
    try {
      for (const pid of pids) setPriority(pid, MONITOR_NICE);
      this.p.log.append({ kind: 'daemon', phase: 'priority', nice: MONITOR_NICE, pids });
    } catch (err) {
      // not root (or not allowed): the monitor competes with the subject as an equal
      this.p.log.append({ kind: 'daemon', phase: 'priority', nice: null, pids, detail: (err as Error).message });
    }
  }

  /** what `redline status` prints */
  status(): Record<string, unknown> {
    return status(this.p);
  }

  private reload(): { ok: boolean; rules?: number; errors?: string[] } {
    const res = this.reloadRules();
    return res === true ? { ok: true, rules: this.p.pipeline.ruleset.rules.length } : { ok: false, errors: res };
  }

  /**
   * Lets what the subject did last reach the log: events still in bpftrace's buffers, link
   * checks, copy matches under way. `exec` calls it once the subject's group is empty,
   * before its verdict.
   */
  async settle(maxMs = SETTLE_MS): Promise<void> {
    const { p } = this;
    await drainSensor(p);
    const t0 = Date.now();
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // with the poll, the folders the subject worked in are looked at once more: what it wrote
    // last, too quick for a pass, is judged before the verdict
    const poll = p.sensor instanceof PollSensor;
    if (poll) p.watcher?.sweepAdded();
    const limit = poll ? Math.max(maxMs, POLL_SETTLE_MS) : maxMs;
    await pause(60);
    while (Date.now() - t0 < limit && (p.tracker.busy() || (poll && p.watcher?.busy()))) await pause(20);
  }

  /** dry-run the rule files; swap only when they load without error (else: the problems) */
  reloadRules(): true | string[] {
    const { p } = this;
    const res = loadRules(p.o.config.rules);
    if (!res.ruleset) {
      const why = res.errors.map(formatProblem).join('; ');
      p.pipeline.daemonAlert('redline.rules-reload-failed', 'monitor.degraded', 'critical', `rule reload failed, the old rules stay: ${why}`, { errors: res.errors });
      return res.errors.map(formatProblem);
    }
    p.pipeline.ruleset = res.ruleset;
    // the kernel program is fixed at start: a rule that now wants read-only opens sees them after a restart
    const blind = p.allOpens ? [] : res.ruleset.rules.filter((r) => r.readsOpens).map((r) => `${r.file}:${r.line}: rule ${r.id} looks at read-only opens, which the running sensor drops in the kernel until redline restarts`);
    p.log.append({ kind: 'daemon', phase: 'rules-reloaded', rules: res.ruleset.rules.length, rule_files: res.files, warnings: [...res.warnings.map(formatProblem), ...blind] });
    return true;
  }

  /** the stop record reaches the stream's clients before they are told the daemon stopped */
  private async stopStream(): Promise<void> {
    await this.p.stream?.stop();
    if (this.p.tokenFile) rmSync(this.p.tokenFile, { force: true });
  }

  async stop(reason: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const { p } = this;
    p.deadman?.bye();
    await this.signals.close();
    // each sandbox still running ends with the daemon, its verdict on what was seen
    await p.trials?.stop('daemon stopped');
    await drainSensor(p);
    const report = (step: string, err: unknown) => process.stderr.write(`redline: stopping ${step} failed: ${(err as Error).message}\n`);
    await this.sensing.teardown(report);
    p.log.append({ kind: 'daemon', phase: 'stop', reason, events: p.pipeline.counts.events, alerts: p.pipeline.counts.alerts, lost_events: p.pipeline.counts.lost });
    await this.serving.teardown(report);
    // after the last record: NATS gets what is queued (the rest waits in its spool), then the metrics close
    if (p.o.outputs) await closeOutputs(p.o.outputs);
    const unwritten = p.log.pendingLines();
    if (unwritten.length > 0) {
      // the disk refused them; the operator's terminal or journal is the last place left
      process.stderr.write(`redline: ${unwritten.length} audit records could not be written to ${p.log.path}; they follow:\n`);
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
