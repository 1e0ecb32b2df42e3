// Is bpftrace's byte accounting worth replacing with a libbpf program? The weights are
// followed host-wide through every read and write syscall; in bpftrace that is an entry and
// an exit tracepoint per syscall with a per-thread map between them. The libbpf loader
// (daemon/sensors/ebpf/loader/) does the same accounting as one raw tracepoint program on
// sys_exit (C, ring buffer), reading the syscall's arguments from the registers saved at entry.
//
// Two loads, each in a cgroup traced as redline traces its subject, alternating, ROUNDS
// (default 5) of each, medians:
//   dd:       1 Mi writes of 16 bytes to a file (and as many reads of /dev/zero)
//   workload: the shell workload of bench/workload.ts
// under four tracers: none; redline's whole bpftrace program; that program without its byte
// probes; that program without its byte probes beside the libbpf loader (what redline would
// run with the loader). Also each tracer's start-up (spawn → every probe attached).
// Needs root, cgroup v2, bpftrace, clang, bpftool and libbpf-dev (x86_64). Prints JSON.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGroup, findCgroupV2Mount } from '../daemon/cgroup.js';
import { generateScript } from '../daemon/sensors/ebpf/script.js';
import { BPFTRACE_ENV, endRun, runInGroup, startTracer, WORKLOAD, writeWorkload } from './tracer.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');
const dir = mkdtempSync(join(tmpdir(), 'redline-loader-floor-'));
const build = spawnSync('bash', [join(import.meta.dirname, '..', 'daemon', 'sensors', 'ebpf', 'loader', 'build.sh'), join(dir, 'loader')], { encoding: 'utf8' });
if (!build.stderr.includes('built the libbpf loader')) throw new Error(`the loader was not built:\n${build.stderr}`);
const out = join(dir, 'ms');
const loads: Record<string, string> = { workload: writeWorkload(dir, out) };
loads.dd = join(dir, 'dd.sh');
writeFileSync(loads.dd, `#!/bin/sh\nt0=$(date +%s%N)\ndd if=/dev/zero of=${dir}/dd.out bs=16 count=1048576 2>/dev/null\nt1=$(date +%s%N)\necho $(( (t1 - t0) / 1000000 )) > ${out}\n`, { mode: 0o755 });

type Tracer = 'none' | 'bpftrace' | 'bpftrace-without-bytes' | 'bpftrace-without-bytes+libbpf';
const TRACERS: Tracer[] = ['none', 'bpftrace', 'bpftrace-without-bytes', 'bpftrace-without-bytes+libbpf'];
const startup: Record<string, number[]> = { bpftrace: [], 'bpftrace-without-bytes': [], libbpf: [] };

async function timed(load: string, tracer: Tracer): Promise<number> {
  const group = join(mount as string, 'redline', `bench-loader-floor-${process.pid}`);
  createGroup(group);
  rmSync(out, { force: true });
  const children: ChildProcess[] = [];
  try {
    if (tracer !== 'none') {
      const bytes = tracer === 'bpftrace';
      const bt = await startTracer('bpftrace', ['-B', 'line', '-e', generateScript({ kind: 'cgroup', path: group }, { syscallBytes: bytes })], BPFTRACE_ENV);
      children.push(bt.child);
      startup[bytes ? 'bpftrace' : 'bpftrace-without-bytes']?.push(bt.readyMs);
    }
    if (tracer === 'bpftrace-without-bytes+libbpf') {
      const ld = await startTracer(join(dir, 'loader', 'redline-loader'), [join(dir, 'loader', 'bytes.bpf.o'), String(process.pid), `cgroup:${statSync(group).ino}`]);
      children.push(ld.child);
      startup.libbpf?.push(ld.readyMs);
    }
    runInGroup(group, load);
    return Number(readFileSync(out, 'utf8'));
  } finally {
    await endRun(children, group);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
const pct = (x: number, base: number) => Math.round(((x - base) / base) * 1000) / 10;
try {
  for (const [name, load] of Object.entries(loads)) {
    await timed(load, 'none'); // page cache warm for all
    const ms: Record<string, number[]> = Object.fromEntries(TRACERS.map((t) => [t, []]));
    for (let i = 0; i < ROUNDS; i++) for (const t of TRACERS) ms[t]?.push(await timed(load, t));
    const base = median(ms.none ?? []);
    const medians = Object.fromEntries(TRACERS.map((t) => [t, median(ms[t] ?? [])]));
    console.log(
      JSON.stringify({
        bench: 'loader-floor', load: name, what: name === 'dd' ? 'dd bs=16 count=1Mi, /dev/zero to a file' : WORKLOAD, unit: 'ms', rounds: ROUNDS,
        ms, medians, slowdown_pct: Object.fromEntries(TRACERS.slice(1).map((t) => [t, pct(medians[t] as number, base)])),
        ...(name === 'dd' ? { ns_per_write_byte_accounting: { bpftrace: Math.round(((medians.bpftrace as number) - (medians['bpftrace-without-bytes'] as number)) * 1e6 / 1048576), libbpf: Math.round(((medians['bpftrace-without-bytes+libbpf'] as number) - (medians['bpftrace-without-bytes'] as number)) * 1e6 / 1048576) } } : {}),
      }),
    );
  }
  console.log(JSON.stringify({ bench: 'loader-startup', unit: 'ms', medians: Object.fromEntries(Object.entries(startup).map(([k, v]) => [k, Math.round(median(v))])) }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
