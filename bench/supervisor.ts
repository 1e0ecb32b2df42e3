// What `redline exec`'s supervisor (daemon/supervisor.ts) costs: the harness's process starts
// the monitor as its child, so the monitor starts that much later. Measured from the spawn of
// `redline exec` (the built dist/, as `npx redline` runs it) to the moment its child, the
// monitor, exists (/proc/PID/task/PID/children, read every millisecond), beside the floor of
// a bare `node -e 0` start; and the supervisor's memory and CPU while a trial runs. Prints JSON.
// Needs root, bpftrace and cgroup v2 (the monitor runs a real trial); `npm run build` first.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLK_TCK, cpuTicks } from './procstat.js';
import { summary } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-supervisor-'));

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const toChild: number[] = [];
const floor: number[] = [];
const rss: number[] = [];
const cpu: number[] = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const f0 = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    floor.push(performance.now() - f0);
    const t0 = performance.now();
    const sup = spawn(process.execPath, ['dist/daemon/cli.js', 'exec', '--mode', 'observe', '--socket', 'off', '--log', join(dir, `${i}.ndjson`), '--', 'sleep', '4'], { stdio: 'ignore' });
    const pid = sup.pid as number;
    while (children(pid).length === 0) await new Promise((r) => setTimeout(r, 1));
    toChild.push(performance.now() - t0);
    // settled: the monitor is up and the subject sleeps
    await new Promise((r) => setTimeout(r, 2000));
    const c0 = cpuTicks(pid);
    rss.push(rssMb(pid));
    await new Promise((r) => setTimeout(r, 1000));
    cpu.push(((cpuTicks(pid) - c0) / CLK_TCK) * 100);
    await new Promise((r) => sup.on('exit', r));
  }
  console.log(JSON.stringify({
    bench: 'exec-supervisor', unit: 'ms', runs: RUNS,
    spawn_to_monitor: summary(toChild), floor_node_start: summary(floor),
    supervisor_rss_mb: summary(rss), supervisor_cpu_pct_idle_trial: summary(cpu),
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
