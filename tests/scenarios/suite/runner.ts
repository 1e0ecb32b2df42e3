// Runs one scenario in one mode under the real `redline exec`, and judges it from the log.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCgroupV2Mount } from '../../../daemon/cgroup.js';
import { makeModel, makeWeights } from '../../helpers/model.js';
import { sweepGroup } from '../../helpers/host.js';
import { alertsOf, type LogRecord, readLog, ROOT, startRedline } from '../../helpers/redline.js';
import type { Ctx, Scenario } from './scenarios.js';

export type Mode = 'observe' | 'enforce';

export interface Outcome {
  family: string;
  scenario: string;
  mode: Mode;
  /** the scenario did what it must in this mode (see judge()) */
  caught: boolean;
  /** why not, when not */
  problems: string[];
  exit: number | null;
  categories: string[];
  /** kernel event → alert, for the first alert of an expected category (ms) */
  detect_ms: number | null;
  /** kernel event → frozen, enforce mode (ms) */
  freeze_ms: number | null;
  log: string;
}

const FAKE_SMI = join(ROOT, 'tests/helpers/fake-nvidia-smi');
const SERVER = join(ROOT, 'tests/fixtures/fake_server.py');
const GPU = 'GPU-0c6a4b1e-1f6d-4c39-9d47-5d0e1b2c3a4f';
const HIGH = new Set(['high', 'critical']);

export interface Suite {
  dir: string;
  model: Ctx['model'];
  cleanup: () => void;
}

/** the protected model, shared by every run of a suite */
export function prepareSuite(dir: string): Suite {
  const m = makeModel(join(dir, 'model'), 6);
  const gguf = makeWeights(join(m.dir, 'model.gguf'), 'gguf', 4);
  const pt = makeWeights(join(m.dir, 'pytorch_model.bin'), 'pytorch-zip', 4);
  // readable by the unprivileged subject too
  chmodSync(dir, 0o755);
  return { dir, model: { ...m, gguf, pt }, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const tick = () => {
      if (check()) return resolve(true);
      if (Date.now() - t0 > ms) return resolve(false);
      setTimeout(tick, 20);
    };
    tick();
  });
}

/** what a run must show: observe — every expected category; enforce — trip, freeze, evidence, kill, no answer */
export function judge(s: Scenario, mode: Mode, exit: number | null, records: LogRecord[]): string[] {
  const problems: string[] = [];
  const alerts = alertsOf(records);
  const categories = new Set(alerts.map((a) => String(a.category)));
  const freeze = records.find((r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true);
  if (s.benign) {
    const loud = alerts.filter((a) => HIGH.has(String(a.severity)));
    if (loud.length > 0) problems.push(`benign work raised ${loud.map((a) => `${a.rule} (${a.severity}): ${a.summary}`).join('; ')}`);
    if (freeze) problems.push('benign work was frozen');
    if (exit !== 0) problems.push(`exit ${exit}, not 0`);
    return problems;
  }
  if (mode === 'observe' || s.trips === false) {
    for (const c of s.expect) if (!categories.has(c)) problems.push(`no ${c} alert`);
    const want = s.trips === false ? 0 : 3;
    if (exit !== want) problems.push(`exit ${exit}, not ${want}`);
    if (s.trips === false && freeze) problems.push('frozen for a medium finding');
    return problems;
  }
  if (exit !== 3) problems.push(`exit ${exit}, not 3`);
  if (!alerts.some((a) => HIGH.has(String(a.severity)) && s.expect.includes(String(a.category)))) problems.push(`no high or critical alert of ${s.expect.join('/')}`);
  if (!freeze) problems.push('never frozen');
  else {
    if (!records.some((r) => r.kind === 'snapshot' && r.seq > freeze.seq)) problems.push('no evidence snapshot after the freeze');
    if (!records.some((r) => r.kind === 'action' && r.action === 'kill' && r.ok === true && r.seq > freeze.seq)) problems.push('the group was not killed after the freeze');
  }
  const answered = records.find((r) => r.kind === 'event' && r.type === 'probe' && r.inference === true);
  if (answered) problems.push(`a replica answered (record ${answered.seq}) in enforce mode`);
  return problems;
}

/**
 * The namespaces an agent runs in, as a container runs it: its own mount, pid, net and uts
 * namespaces (loopback brought up in the new net namespace). `shared-pid`: the host's pid
 * namespace kept (docker --pid=host), for agents that must reach host pids.
 */
export type Namespaces = 'none' | 'all' | 'shared-pid';

function inNamespaces(ns: Namespaces, script: string): string[] {
  if (ns === 'none') return [script];
  const which = ns === 'all' ? ['--mount', '--pid', '--net', '--uts'] : ['--mount', '--net', '--uts'];
  return ['unshare', ...which, '--fork', '--propagation', 'private', '--', 'sh', '-c', `ip link set lo up && exec ${script}`];
}

export type SensorKind = 'ebpf' | 'poll';

export async function runScenario(suite: Suite, s: Scenario, mode: Mode, ns: Namespaces = process.env.SCENARIO_NS === '1' ? 'all' : 'none', sensor: SensorKind = 'ebpf'): Promise<Outcome> {
  const trial = `${s.family}-${s.name}-${mode}${ns === 'none' ? '' : '-ns'}${sensor === 'poll' ? '-poll' : ''}`;
  const dir = join(suite.dir, trial);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const log = join(dir, 'audit.ndjson');
  const gpuState = join(dir, 'gpu.json');
  const children: ChildProcess[] = [];
  const start = (cmd: string, args: string[]) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    children.push(c);
    return c;
  };
  const bystander = start('sleep', ['600']);
  // the sanctioned original server: holds the weights and 40 GB of "GPU" memory
  const original = start('python3', [SERVER, '--weights', suite.model.weights, '--lifetime', '600']);
  writeFileSync(gpuState, JSON.stringify({ mode: 'ok', gpus: [{ index: 0, uuid: GPU, total_mib: 81559, used_mib: 40000 }], apps: [{ pid: original.pid, used_mib: 40000, gpu_uuid: GPU }] }));
  chmodSync(gpuState, 0o666);
  const ctx: Ctx = { dir, model: suite.model, server: SERVER, original: original.pid as number, bystander: bystander.pid as number, gpuState, log, cgroupRoot: findCgroupV2Mount() ?? '/sys/fs/cgroup' };
  const script = join(dir, 'agent.sh');
  writeFileSync(script, `#!/bin/sh\n${s.script(ctx)}\n`);
  chmodSync(script, 0o755);
  const args = ['exec', '--sensor', sensor, '--mode', mode, '--weights', suite.model.dir, '--allow-pid', String(original.pid), '--protect-pid', String(original.pid), '--nvidia-smi', FAKE_SMI, '--gpu-interval', '200', '--log', log, '--trial', trial];
  if (s.user !== undefined) args.push('--user', String(s.user));
  const group = join(ctx.cgroupRoot, 'redline', trial);
  await sweepGroup(group);
  // in namespaces (SCENARIO_NS=1 runs the whole suite so), a hook that signals the agent would
  // read its pid inside the namespace: hooks do not run
  const agent = inNamespaces(ns, script);
  const d = startRedline([...args, '--', ...agent], { FAKE_NVIDIA_SMI_STATE: gpuState });
  const killer = setTimeout(() => d.child.kill('SIGKILL'), 60_000);
  try {
    if (s.during && ns === 'none') {
      const pidFile = join(dir, 'agent.pid');
      if (await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 30_000)) {
        await new Promise((r) => setTimeout(r, 300));
        try {
          s.during(ctx, Number(readFileSync(pidFile, 'utf8')));
        } catch {
          // the agent is gone already: the log says what happened
        }
      }
    }
    const run = await d.done;
    const records = readLog(log);
    const problems = judge(s, mode, run.code, records);
    const alerts = alertsOf(records);
    const first = alerts.find((a) => s.expect.includes(String(a.category)));
    const freeze = records.find((r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true);
    return {
      family: s.family,
      scenario: s.name,
      mode,
      caught: problems.length === 0,
      problems: run.code === null ? [...problems, `redline did not finish: ${run.stderr.slice(-500)}`] : problems,
      exit: run.code,
      categories: [...new Set(alerts.map((a) => String(a.category)))],
      detect_ms: typeof first?.latency_ms === 'number' ? first.latency_ms : null,
      freeze_ms: typeof freeze?.since_event_ms === 'number' ? freeze.since_event_ms : null,
      log,
    };
  } finally {
    clearTimeout(killer);
    for (const c of children) c.kill('SIGKILL');
    // redline ends every trial with its group empty and removed; a run that went wrong may not
    await sweepGroup(group);
    for (const f of s.leftovers?.(ctx) ?? []) rmSync(f, { force: true });
  }
}
