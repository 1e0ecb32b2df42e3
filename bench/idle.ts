// The daemon's idle cost: CPU share and RSS of `redline run` (node + bpftrace) watching an
// empty subject group for a while. Prints JSON. Needs root, bpftrace and cgroup v2.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCgroupV2Mount, removeGroup } from '../daemon/cgroup.js';

const SECONDS = Number(process.env.IDLE_SECONDS ?? 20);
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const group = join(mount, `redline-bench-idle-${process.pid}`);
mkdirSync(group, { recursive: true });
const CLK_TCK = 100;

function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}
function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const daemon = spawn(process.execPath, ['dist/daemon/cli.js', 'run', '--subject-cgroup', group, '--log', `/tmp/redline-bench-idle-${process.pid}.ndjson`], { stdio: 'ignore' });
try {
  await new Promise((r) => setTimeout(r, 5000)); // start-up, bpftrace compile and attach
  const pid = daemon.pid as number;
  const bpf = childrenOf(pid)[0];
  const c0 = cpuTicks(pid);
  const b0 = bpf ? cpuTicks(bpf) : 0;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const c1 = cpuTicks(pid);
  const b1 = bpf ? cpuTicks(bpf) : 0;
  console.log(
    JSON.stringify({
      bench: 'idle',
      seconds: SECONDS,
      daemon_cpu_pct: Math.round(((c1 - c0) / CLK_TCK / SECONDS) * 10000) / 100,
      bpftrace_cpu_pct: Math.round(((b1 - b0) / CLK_TCK / SECONDS) * 10000) / 100,
      daemon_rss_mb: Math.round(rssKb(pid) / 102.4) / 10,
      bpftrace_rss_mb: bpf ? Math.round(rssKb(bpf) / 102.4) / 10 : null,
    }),
  );
} finally {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  removeGroup(group);
}
