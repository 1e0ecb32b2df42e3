// The guard's cost. (1) The workload of bench/workload.ts timed from inside, plain
// and under the subject's seccomp filter alone (redline-enter, the floor: no sensor), then
// under `exec --mode observe` with the guard and with REDLINE_GUARD=off, alternating, ROUNDS
// (default 5) of each; medians; and the same for a loop of 2M getppid() calls, the cost per
// syscall (the hook itself). (2) The copy gate: bytes of a 64 MiB model on disk once an enforce
// trial that copies it is over, for cp, dd bs=4M and a copy throttled to ~200 MB/s. Needs
// root, cgroup v2, and `npm run build` first.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGroup, findCgroupV2Mount, removeGroup } from '../daemon/cgroup.js';
import { seccompEntry } from '../daemon/guard/index.js';
import { writeWorkload } from './tracer.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const enter = seccompEntry();
if (!enter) throw new Error('redline-enter is not built, or this is not root on x86_64');
const dir = mkdtempSync(join(tmpdir(), 'redline-guard-bench-'));
const out = join(dir, 'ms');
const script = writeWorkload(dir, out);
const mount = findCgroupV2Mount();
if (!mount) throw new Error('needs cgroup v2');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const pct = (a: number, b: number) => Math.round((a / b - 1) * 1000) / 10;

function timed(how: 'plain' | 'seccomp' | 'guard' | 'off', script: string): number {
  rmSync(out, { force: true });
  if (how === 'plain') spawnSync(script, { stdio: 'ignore' });
  else if (how === 'seccomp') {
    const group = join(mount as string, 'redline', `bench-guard-${process.pid}`);
    createGroup(group);
    // the filter as exec installs it, naming this process as the monitor
    spawnSync(enter as string, [group, '-m', String(process.pid), '-p', '0', '--', script], { stdio: 'ignore' });
    removeGroup(group);
  } else {
    spawnSync(process.execPath, ['dist/daemon/cli.js', 'exec', '--mode', 'observe', '--socket', 'off', '--log', join(dir, `${how}.ndjson`), '--', script], { stdio: process.env.BENCH_VERBOSE ? 'inherit' : 'ignore', env: { ...process.env, ...(how === 'off' ? { REDLINE_GUARD: 'off' } : {}) } });
  }
  try {
    return Number(readFileSync(out, 'utf8'));
  } catch {
    throw new Error(`the ${how} run wrote no time`);
  }
}

const runs: Record<string, number[]> = { plain: [], seccomp: [], guard: [], off: [] };
for (let i = 0; i < ROUNDS; i++) for (const how of ['plain', 'seccomp', 'guard', 'off'] as const) runs[how]?.push(timed(how, script));
const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)])) as Record<string, number>;

// (1b) the cost per syscall, the hook itself: a C loop of getppid() (which the filter checks
// against none of its lists, as most calls), ns a call, in the same four ways
const loop = join(dir, 'loop');
const src = join(dir, 'loop.c');
writeFileSync(src, '#include <stdio.h>\n#include <time.h>\n#include <unistd.h>\n#include <sys/syscall.h>\nint main(int c, char **v) { struct timespec a, b; FILE *o = fopen(v[1], "w"); clock_gettime(CLOCK_MONOTONIC, &a); for (int i = 0; i < 2000000; i++) syscall(SYS_getppid); clock_gettime(CLOCK_MONOTONIC, &b); fprintf(o, "%.1f", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 2e6); fclose(o); return 0; }\n');
spawnSync('cc', ['-O2', '-o', loop, src]);
const perCall: Record<string, number[]> = { plain: [], seccomp: [], guard: [], off: [] };
const loopScript = join(dir, 'loop.sh');
writeFileSync(loopScript, `#!/bin/sh\nexec ${loop} ${out}\n`);
chmodSync(loopScript, 0o755);
for (let i = 0; i < ROUNDS; i++) for (const how of ['plain', 'seccomp', 'guard', 'off'] as const) perCall[how]?.push(timed(how, loopScript));
const ns = Object.fromEntries(Object.entries(perCall).map(([k, v]) => [k, median(v)])) as Record<string, number>;

// the copy gate: bytes of a 64 MiB model on disk once the subject is frozen (enforce mode)
const model = join(dir, 'model.bin');
spawnSync('dd', ['if=/dev/urandom', `of=${model}`, 'bs=1M', 'count=64'], { stdio: 'ignore' });
const copiers: Record<string, string> = {
  cp: `cp ${model} ${dir}/copy.bin`,
  dd_bs4M: `dd if=${model} of=${dir}/copy.bin bs=4M`,
  throttled_200MBps: `python3 -c 'import sys,time; s=open(sys.argv[1],"rb"); d=open(sys.argv[2],"wb")\nwhile True:\n  b=s.read(1<<20)\n  if not b: break\n  d.write(b); d.flush(); time.sleep(0.005)' ${model} ${dir}/copy.bin`,
};
const onDisk: Record<string, number> = {};
for (const [name, cmd] of Object.entries(copiers)) {
  rmSync(join(dir, 'copy.bin'), { force: true });
  spawnSync(process.execPath, ['dist/daemon/cli.js', 'exec', '--weights', model, '--socket', 'off', '--log', join(dir, `gate-${name}.ndjson`), '--', 'sh', '-c', cmd], { stdio: 'ignore' });
  try {
    onDisk[name] = statSync(join(dir, 'copy.bin')).size;
  } catch {
    onDisk[name] = 0;
  }
}

console.log(JSON.stringify({
  bench: 'guard', rounds: ROUNDS,
  workload_ms: m, seccomp_filter_pct: pct(m.seccomp as number, m.plain as number),
  getppid_ns: ns, seccomp_filter_ns_per_call: Math.round(((ns.seccomp as number) - (ns.plain as number)) * 10) / 10, redline_guard_pct: pct(m.guard as number, m.plain as number), redline_guard_off_pct: pct(m.off as number, m.plain as number),
  gate_bytes_on_disk: onDisk,
}));
rmSync(dir, { recursive: true, force: true });
