// Helpers of the floor benchmarks: a tracer (bpftrace, the libbpf loader) started and read
// until its ready line, its output then discarded; the workload's shell script.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { groupPids, removeGroup } from '../daemon/cgroup.js';
import { READY } from '../daemon/sensors/ebpf/script.js';

/** spawns `cmd` and resolves once it printed READY (every probe attached), with how long that took */
export async function startTracer(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; readyMs: number }> {
  const t0 = performance.now();
  // stderr ignored: bpftrace warns about RLIMIT_MEMLOCK here; a real failure ends it, which is reported
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...env } });
  await new Promise<void>((ready, fail) => {
    let seen = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (seen === READY) return;
      seen = (seen + chunk).includes(READY) ? READY : (seen + chunk).slice(-READY.length);
      if (seen === READY) ready();
    });
    child.on('exit', (code) => fail(new Error(`${cmd} exited (${code})`)));
  });
  // as redline runs its sensor: at a higher priority than the subject
  spawnSync('renice', ['-n', '-10', '-p', String(child.pid)], { stdio: 'ignore' });
  return { child, readyMs: performance.now() - t0 };
}

/** bpftrace as redline runs it: the same string size and perf buffer */
export const BPFTRACE_ENV = { BPFTRACE_STRLEN: '200', BPFTRACE_PERF_RB_PAGES: '256' };

export const WORKLOAD = '1500 /bin/true; tar of /usr/share/doc + sha256; 300 × (cat + ls)';

/** writes the workload's script into `dir`; it writes its own time in ms to `out` */
export function writeWorkload(dir: string, out: string): string {
  const script = join(dir, 'work.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      't0=$(date +%s%N)',
      'i=0; while [ $i -lt 1500 ]; do /bin/true; i=$((i+1)); done',
      `tar cf ${dir}/doc.tar /usr/share/doc 2>/dev/null; sha256sum ${dir}/doc.tar >/dev/null`,
      'i=0; while [ $i -lt 300 ]; do cat /etc/hostname >/dev/null; ls / >/dev/null; i=$((i+1)); done',
      't1=$(date +%s%N)',
      `echo $(( (t1 - t0) / 1000000 )) > ${out}`,
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  return script;
}

/** runs `script` as the first process of the cgroup `group` and waits for it */
export function runInGroup(group: string, script: string): void {
  spawnSync('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$1"', group, script], { stdio: 'ignore' });
}

/** stops the tracers and removes the run's group once it is empty (within 2 s) */
export async function endRun(tracers: ChildProcess[], group: string): Promise<void> {
  for (const t of tracers) t.kill('SIGINT');
  const t0 = Date.now();
  while (groupPids(group).length > 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
  removeGroup(group);
}
