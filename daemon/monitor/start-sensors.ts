// The start-up steps that make the monitor see: the weights fingerprinted and their folders
// watched, the BPF LSM guard, the process sensor, the ports poll, the GPU. Each source's
// events go into the inbox and only there; its trouble to the pipeline as sensor trouble.
import { dirname } from 'node:path';
import type { SensorEvent } from '../events.js';
import { type GuardStatus, LsmGuard, seccompEntry } from '../guard/index.js';
import type { EventSource } from '../inbox.js';
import { EbpfSensor } from '../sensors/ebpf/index.js';
import { POLL_BLIND, starvedByPoll } from '../sensors/feeds.js';
import { GpuSensor, gpuUnavailableReason } from '../sensors/gpu/index.js';
import { PollSensor } from '../sensors/poll/index.js';
import type { SensorTrouble } from '../sensors/sensor.js';
import { FolderWatcher } from '../sensors/weights/watch.js';
import { describeSubject, subjectFilter } from '../subject.js';
import { ownSide, type Parts } from './parts.js';

type Source = EventSource & { on(name: 'trouble', fn: (t: SensorTrouble) => void): unknown };

/** a source's events into the inbox (the process sensor's through the trials gate), its trouble to the pipeline */
export function feed(p: Parts, s: Source): void {
  const metrics = p.o.outputs?.metrics;
  const gate = s === p.sensor && p.gate ? p.gate : null;
  p.pipeline.inbox.attach(s, gate ? (ev) => gate.admit(ev) : null, metrics ? (name) => metrics.event(name) : undefined);
  s.on('trouble', (t) => {
    // the process sensor stopped seeing (died, lost events, hung): who signalled the daemon
    // around now cannot be known from it
    if (s === p.sensor && t.reason !== 'stderr') p.sensorBlindAt = Date.now();
    p.pipeline.sensorTrouble(t);
  });
}

/** fingerprints --weights before the subject starts; what was registered goes in the log */
export async function registerWeights(p: Parts): Promise<void> {
  if (p.o.config.weights.length === 0) return;
  const t0 = performance.now();
  const res = await p.registry.registerPaths(p.o.config.weights);
  p.log.append({
    kind: 'daemon',
    phase: 'weights',
    files: res.files.map((f) => ({ path: f.path, size: f.fp.size, format: f.fp.format, dev: f.fp.dev, ino: f.fp.ino })),
    skipped: res.skipped,
    ms: Math.round(performance.now() - t0),
  });
  p.weightPaths = res.files.map((f) => f.path);
  await startWatcher(p, res.files.map((f) => dirname(f.path)));
}

async function startWatcher(p: Parts, weightFolders: string[]): Promise<void> {
  const folders = [...new Set([...p.o.config.watch, ...weightFolders])];
  if (folders.length === 0) return;
  // (with the poll, nothing else claims a new file within the half second eBPF gets: one pass)
  const settleMs = p.o.sensor?.kind === 'poll' ? p.o.config.pollIntervalMs : undefined;
  const w = new FolderWatcher({ registry: p.registry, folders, claimed: (dev, ino, path) => p.tracker.claimed(dev, ino, path), ...(settleMs === undefined ? {} : { settleMs }) });
  feed(p, w);
  try {
    await w.start();
    p.watcher = w;
    p.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'watch', detail: `watching ${folders.join(', ')}` });
  } catch (err) {
    p.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'watch', detail: `off: ${(err as Error).message}` });
  }
}

/**
 * With the poll: a copy made between two passes is found where the subject works (its
 * folders, and /dev/shm), and a new socket of the subject's makes the ports poll look now.
 */
export function followPoll(p: Parts, sensor: PollSensor, extraFolders: string[]): void {
  sensor.on('folder', (dir: string) => {
    if (p.watcher?.add(dir, p.startedAt)) p.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'watch', detail: `watching ${dir} too (the subject works there)` });
  });
  sensor.on('sockets', () => void p.ports.tick());
  for (const dir of extraFolders) sensor.folder(dir);
}

/**
 * The BPF LSM guard, before the subject starts: told the monitor's processes, files, the
 * protected pids and the mode. Where it cannot load, the log says why (detection remains,
 * and exec's seccomp filter refuses what it can).
 */
export async function startGuard(p: Parts): Promise<void> {
  const filter = subjectFilter(p.o.subject);
  let status: GuardStatus;
  try {
    if (!filter) throw new Error(`the guard needs a cgroup v2 group or a uid as the subject, not ${describeSubject(p.o.subject)}`);
    const g = await LsmGuard.start(filter);
    p.guard = g;
    g.monitor([...ownSide(), ...g.ownPids()]);
    g.protect(p.o.config.protectPids);
    g.files(p.monitorFiles);
    g.mode(p.o.config.mode === 'enforce');
    g.on('event', (ev: SensorEvent) => {
      const admitted = p.gate ? p.gate.admit(ev) : ev;
      if (admitted) p.pipeline.ingest(admitted);
    });
    g.on('trouble', (t) => p.pipeline.sensorTrouble(t));
    p.table.setMonitorPids(g.ownPids());
    status = { guard: 'kernel' };
  } catch (err) {
    const seccomp = p.o.config.command === 'exec' && seccompEntry() !== null;
    const also = seccomp
      ? "; the subject's seccomp filter still refuses its signals, ptrace and scheduling calls aimed at the monitor, bpf() and module loads; its writes to the monitor's files and to cgroups are detected, not refused"
      : '';
    status = { guard: 'detect-only', guard_reason: `${(err as Error).message}${also}` };
  }
  p.guardStatus = status;
  p.log.append({ kind: 'daemon', phase: 'guard', ...status, guard_pid: p.guard?.pid });
}

/** the process sensor is up: its record says what it sees, and what it is blind to */
export function sensorRecord(p: Parts): void {
  const { sensor, o } = p;
  if (sensor instanceof PollSensor) {
    const blind = Object.entries(POLL_BLIND).map(([type, why]) => ({ type, why }));
    p.log.append({ kind: 'daemon', phase: 'sensor', sensor: sensor.name, sensor_pids: [], bytes_by: 'poll', source: sensor.source, interval_ms: o.config.pollIntervalMs, chosen_because: o.sensor?.why, blind_to: blind, inactive_rules: starvedByPoll(o.ruleset.rules).filter((r) => r.inactive).map((r) => r.rule), detail: `reading ${sensor.source === 'proc' ? '/proc' : 'ps-list'} every ${o.config.pollIntervalMs} ms` });
  } else if (sensor instanceof EbpfSensor) p.log.append({ kind: 'daemon', phase: 'sensor', sensor: sensor.name, sensor_pids: sensor.ownPids(), bytes_by: sensor.bytesBy(), bytes_by_why: sensor.bytesByWhy(), detail: 'probes attached' });
}

/** the GPU sensor runs where nvidia-smi does; elsewhere the log says why it is off */
export async function startGpu(p: Parts): Promise<void> {
  const nvidiaSmi = p.o.config.nvidiaSmi;
  const why = gpuUnavailableReason(nvidiaSmi);
  if (why) {
    p.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'gpu', detail: `off: ${why}` });
    return;
  }
  const gpu = new GpuSensor({ nvidiaSmi, allowPids: [...p.o.config.allowPids], intervalMs: p.o.config.gpuIntervalMs, replicaShare: p.o.config.gpuReplicaShare });
  feed(p, gpu);
  gpu.on('recovered', (r: { detail: string }) => {
    p.gpuUp = true;
    p.log.append({ kind: 'daemon', phase: 'sensor-recovered', sensor: 'gpu', detail: r.detail });
  });
  gpu.on('trouble', (t: { reason: string }) => {
    if (t.reason !== 'stderr') p.gpuUp = false;
  });
  try {
    await gpu.start();
    p.gpu = gpu;
    p.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'gpu', detail: `polling ${nvidiaSmi}` });
  } catch (err) {
    p.log.append({ kind: 'daemon', phase: 'sensor', sensor: 'gpu', detail: `off: ${(err as Error).message}` });
  }
}
