// The monitored workload's slowdown: a shell workload of many short processes and file reads
// (1,500 `/bin/true`; a tar of /usr/share/doc and its sha256; 300 × `cat` + `ls`), timed from
// inside the workload, plain, under `redline exec --mode observe`, and under the floor —
// redline's own eBPF programs alone (bpftrace, and the libbpf loader when it was built),
// filtered on the workload's cgroup, their output read and thrown away by this process (what
// the probes cost with no redline behind them) — alternating, ROUNDS (default 5) of each. Prints one JSON line with the medians and
// both slowdowns. Needs root, bpftrace and cgroup v2, and `npm run build` first (the daemon
// runs from dist/ as a user would run it).
import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGroup, findCgroupV2Mount } from '../daemon/cgroup.js';
import { findLoader } from '../daemon/sensors/ebpf/host.js';
import { generateScript } from '../daemon/sensors/ebpf/script.js';
import { BPFTRACE_ENV, endRun, runInGroup, startTracer, WORKLOAD, writeWorkload } from './tracer.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
/** the loader redline runs (npm run build); REDLINE_LOADER=off measures bpftrace counting the bytes */
const loader = findLoader();
const dir = mkdtempSync(join(tmpdir(), 'redline-workload-'));
const out = join(dir, 'ms');
const script = writeWorkload(dir, out);

function timed(monitored: boolean): number {
  rmSync(out, { force: true });
  // (exit 3 would only say an alert was raised: the workload's own time is what is read)
  if (monitored) spawnSync(process.execPath, ['dist/daemon/cli.js', 'exec', '--mode', 'observe', '--socket', 'off', '--log', join(dir, 'log.ndjson'), '--', script], { stdio: 'ignore' });
  else spawnSync(script, { stdio: 'ignore' });
  return Number(readFileSync(out, 'utf8'));
}

/** the workload in a cgroup traced by redline's eBPF programs alone (bpftrace and the loader), their output discarded */
async function floorRun(): Promise<number> {
  const mount = findCgroupV2Mount();
  if (!mount) throw new Error('needs cgroup v2');
  const group = join(mount, 'redline', `bench-workload-floor-${process.pid}`);
  createGroup(group);
  rmSync(out, { force: true });
  const tracers: ChildProcess[] = [];
  try {
    // as redline runs them: the libbpf loader counting the bytes when it was built, bpftrace the rest
    if (loader) tracers.push((await startTracer(loader.bin, [loader.obj, String(process.pid), `cgroup:${statSync(group).ino}`])).child);
    tracers.push((await startTracer('bpftrace', ['-B', 'line', '-e', generateScript({ kind: 'cgroup', path: group }, { syscallBytes: !loader })], BPFTRACE_ENV)).child);
    runInGroup(group, script);
    return Number(readFileSync(out, 'utf8'));
  } finally {
    await endRun(tracers, group);
  }
}

/** alerts the monitored runs raised (all runs share one log): a benign workload should raise none at high */
function alertCount(): Record<string, number> {
  const by: Record<string, number> = {};
  try {
    for (const l of readFileSync(join(dir, 'log.ndjson'), 'utf8').split('\n')) {
      if (!l.includes('"kind":"alert"')) continue;
      const r = JSON.parse(l) as { rule: string };
      by[r.rule] = (by[r.rule] ?? 0) + 1;
    }
  } catch {
    // no log: no monitored run
  }
  return by;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
try {
  timed(false); // page cache warm for both
  const plain: number[] = [];
  const watched: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    plain.push(timed(false));
    floor.push(await floorRun());
    watched.push(timed(true));
  }
  const p = median(plain);
  const w = median(watched);
  const f = median(floor);
  console.log(
    JSON.stringify({
      bench: 'workload-slowdown', unit: 'ms', rounds: ROUNDS,
      workload: WORKLOAD, bytes_by: loader ? 'libbpf' : 'bpftrace',
      plain_ms: plain, floor_ms: floor, monitored_ms: watched, plain_median: p, floor_median: f, monitored_median: w,
      alerts_in_monitored_runs: alertCount(),
      slowdown_pct: Math.round(((w - p) / p) * 1000) / 10,
      floor_slowdown_pct: Math.round(((f - p) / p) * 1000) / 10,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
