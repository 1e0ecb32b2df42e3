// The daemon's idle cost: CPU share and RSS of `redline run` (node + bpftrace) watching an
// empty subject group for a while. With IDLE_LOAD=copy, a 1 GiB file is copied outside the
// subject during the window (the host-wide byte counts see it), and the copy is timed
// with and without redline running. Prints JSON. Needs root, bpftrace and cgroup v2.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { findCgroupV2Mount, removeGroup } from '../daemon/cgroup.js';

const SECONDS = Number(process.env.IDLE_SECONDS ?? 20);
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const group = join(mount, `redline-bench-idle-${process.pid}`);
mkdirSync(group, { recursive: true });
const CLK_TCK = 100;
const LOAD = process.env.IDLE_LOAD ?? 'none';
const BIG = `/var/tmp/redline-bench-big-${process.pid}`;

/** seconds to copy the 1 GiB file (page cache warm: the syscalls and their probes are what is timed) */
function copySeconds(): number {
  const t0 = performance.now();
  execFileSync('cp', [BIG, `${BIG}.copy`]);
  const s = (performance.now() - t0) / 1000;
  rmSync(`${BIG}.copy`, { force: true });
  return Math.round(s * 1000) / 1000;
}

let bareCopyS: number | null = null;
if (LOAD === 'copy') {
  execFileSync('dd', ['if=/dev/urandom', `of=${BIG}`, 'bs=1M', 'count=1024', 'status=none']);
  copySeconds();
  bareCopyS = copySeconds();
}

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
  // start-up: bpftrace compiles and attaches ~60 programs (7 s here); measuring earlier counts that
  await new Promise((r) => setTimeout(r, Number(process.env.IDLE_WARMUP_S ?? 15) * 1000));
  const pid = daemon.pid as number;
  const bpf = childrenOf(pid)[0];
  const c0 = cpuTicks(pid);
  const b0 = bpf ? cpuTicks(bpf) : 0;
  const t0 = performance.now();
  const watchedCopyS = LOAD === 'copy' ? copySeconds() : null;
  await new Promise((r) => setTimeout(r, Math.max(0, SECONDS * 1000 - (performance.now() - t0))));
  const c1 = cpuTicks(pid);
  const b1 = bpf ? cpuTicks(bpf) : 0;
  console.log(
    JSON.stringify({
      bench: 'idle',
      load: LOAD === 'copy' ? 'a 1 GiB cp outside the subject during the window' : 'none',
      seconds: SECONDS,
      copy_s_without_redline: bareCopyS,
      copy_s_with_redline: watchedCopyS,
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
  rmSync(BIG, { force: true });
}
