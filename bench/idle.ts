// The daemon's idle cost: CPU share and RSS of `redline run` (node, bpftrace and the libbpf
// loader) watching an
// empty subject group for a while. With IDLE_LOAD=copy, a 1 GiB file is copied outside the
// subject during the window (the host-wide byte counts see it), and the copy is timed
// with and without redline running. Prints JSON. Needs root, bpftrace and cgroup v2.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { findCgroupV2Mount, removeGroup } from '../daemon/cgroup.js';
import { sendControl } from '../daemon/control/client.js';
import { CLK_TCK, childNamed, cpuTicks, rssKb } from './procstat.js';

const SECONDS = Number(process.env.IDLE_SECONDS ?? 20);
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const group = join(mount, `redline-bench-idle-${process.pid}`);
mkdirSync(group, { recursive: true });
// none; copy: `cp` (copy_file_range here: two syscalls for the whole GiB); dd: `dd bs=128k`
// (8,192 reads and 8,192 writes, each through the byte-count probes)
const LOAD = process.env.IDLE_LOAD ?? 'none';
const COPYING = LOAD === 'copy' || LOAD === 'dd';
const BIG = `/var/tmp/redline-bench-big-${process.pid}`;

/** seconds to copy the 1 GiB file (page cache warm: the syscalls and their probes are what is timed) */
function copySeconds(): number {
  const t0 = performance.now();
  if (LOAD === 'dd') execFileSync('dd', [`if=${BIG}`, `of=${BIG}.copy`, 'bs=128k', 'status=none']);
  else execFileSync('cp', [BIG, `${BIG}.copy`]);
  const s = (performance.now() - t0) / 1000;
  rmSync(`${BIG}.copy`, { force: true });
  return Math.round(s * 1000) / 1000;
}

/**
 * The median of three copies after one untimed: the first copy after a pause is slow
 * (0.8–1.1 s against 0.35–0.45 s here) with or without redline, so a single copy
 * compares the page cache's state, not the probes.
 */
function copyMedianSeconds(): number {
  copySeconds();
  const t = [copySeconds(), copySeconds(), copySeconds()].sort((a, b) => a - b);
  return t[1] as number;
}

/**
 * The floor: the same copies under a bare bpftrace whose programs on the same syscalls'
 * entries and exits do nothing (the cost of the tracepoints themselves).
 */
async function floorCopySeconds(): Promise<number> {
  const sys = ['read', 'write', 'copy_file_range'].flatMap((x) => [`tracepoint:syscalls:sys_enter_${x}`, `tracepoint:syscalls:sys_exit_${x}`]);
  const bt = spawn('bpftrace', ['-e', `${sys.join(',')} { } BEGIN { printf("ready\\n"); }`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((r) => bt.stdout.on('data', (d) => String(d).includes('ready') && r()));
  try {
    return copyMedianSeconds();
  } finally {
    bt.kill('SIGINT');
    await new Promise((r) => bt.once('exit', r));
  }
}

let bareCopyS: number | null = null;
let floorS: number | null = null;
if (COPYING) {
  execFileSync('dd', ['if=/dev/urandom', `of=${BIG}`, 'bs=1M', 'count=1024', 'status=none']);
  bareCopyS = copyMedianSeconds();
  floorS = await floorCopySeconds();
}

const socket = `/tmp/redline-bench-idle-${process.pid}.sock`;
const LOG = `/tmp/redline-bench-idle-${process.pid}.ndjson`;

/** events the eBPF sensor parsed (kernel lines) and events the pipeline took in, so far */
async function eventCounts(): Promise<{ sensor: number; pipeline: number }> {
  const r = (await sendControl(socket, { cmd: 'status' })) as { sensors?: { name: string; events: number }[]; counts?: { events: number } };
  return { sensor: r.sensors?.find((x) => x.name === 'ebpf')?.events ?? 0, pipeline: r.counts?.events ?? 0 };
}

const daemon = spawn(process.execPath, ['dist/daemon/cli.js', 'run', '--subject-cgroup', group, '--socket', socket, '--log', LOG], { stdio: 'ignore' });
try {
  // start-up: bpftrace compiles and attaches ~60 programs (7 s here); measuring earlier counts that
  await new Promise((r) => setTimeout(r, Number(process.env.IDLE_WARMUP_S ?? 15) * 1000));
  const pid = daemon.pid as number;
  const bpf = childNamed(pid, 'bpftrace');
  const ld = childNamed(pid, 'redline-loader');
  const e0 = await eventCounts();
  const c0 = cpuTicks(pid);
  const b0 = bpf ? cpuTicks(bpf) : 0;
  const l0 = ld ? cpuTicks(ld) : 0;
  const t0 = performance.now();
  const watchedCopyS = COPYING ? copyMedianSeconds() : null;
  await new Promise((r) => setTimeout(r, Math.max(0, SECONDS * 1000 - (performance.now() - t0))));
  const c1 = cpuTicks(pid);
  const b1 = bpf ? cpuTicks(bpf) : 0;
  const l1 = ld ? cpuTicks(ld) : 0;
  const e1 = await eventCounts();
  console.log(
    JSON.stringify({
      bench: 'idle',
      load: COPYING ? `four 1 GiB copies with ${LOAD === 'dd' ? 'dd bs=128k' : 'cp'} outside the subject during the window` : 'none',
      seconds: SECONDS,
      copy_s_without_redline: bareCopyS,
      copy_s_with_redline: watchedCopyS,
      copy_s_under_empty_bpftrace_probes: floorS,
      daemon_cpu_pct: Math.round(((c1 - c0) / CLK_TCK / SECONDS) * 10000) / 100,
      bpftrace_cpu_pct: Math.round(((b1 - b0) / CLK_TCK / SECONDS) * 10000) / 100,
      // null: the loader was not built, bpftrace counts the bytes
      loader_cpu_pct: ld ? Math.round(((l1 - l0) / CLK_TCK / SECONDS) * 10000) / 100 : null,
      // lines bpftrace printed (host-wide byte counts included) and events past the sensor's own filter
      sensor_events_per_s: Math.round(((e1.sensor - e0.sensor) / SECONDS) * 10) / 10,
      pipeline_events_per_s: Math.round(((e1.pipeline - e0.pipeline) / SECONDS) * 10) / 10,
      daemon_rss_mb: Math.round(rssKb(pid) / 102.4) / 10,
      bpftrace_rss_mb: bpf ? Math.round(rssKb(bpf) / 102.4) / 10 : null,
      loader_rss_mb: ld ? Math.round(rssKb(ld) / 102.4) / 10 : null,
    }),
  );
} finally {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  removeGroup(group);
  rmSync(BIG, { force: true });
  rmSync(LOG, { force: true });
}
