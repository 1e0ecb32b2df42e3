// reboot syscall (kernel time) → system.reboot alert on disk, beside the floor: the same agent
// traced by a bare bpftrace on sys_enter_reboot, read by this process. The agent is python as
// nobody (no CAP_SYS_BOOT, checked before each call: the kernel answers EPERM), 200 calls 10 ms
// apart, under `exec --mode observe`. Prints JSON. Needs root, bpftrace and cgroup v2.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGroup, findCgroupV2Mount, groupPids, removeGroup } from '../daemon/cgroup.js';
import { execCommand } from '../daemon/commands/exec.js';
import { type AlertInfo, Pipeline } from '../daemon/pipeline.js';
import { bareTracer } from './floor.js';
import { summary } from './stats.js';

const CALLS = 200;
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
chmodSync(dir, 0o755);
const py = join(dir, 'reboots.py');
writeFileSync(
  py,
  [
    'import ctypes, time, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    `for i in range(${CALLS}):`,
    "    caps = int([l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1], 16)",
    '    if caps & (1 << 22): sys.exit(3)',
    '    libc.syscall(169, 0xfee1dead, 672274793, 0x01234567, 0)',
    '    time.sleep(0.01)',
  ].join('\n'),
);
const agent = join(dir, 'agent.sh');
writeFileSync(agent, `#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all ${PY} ${py}\n`);
chmodSync(agent, 0o755);

try {
  // redline
  const latencies: number[] = [];
  const orig = Pipeline.prototype.emit;
  Pipeline.prototype.emit = function (this: Pipeline, name: string | symbol, ...args: unknown[]) {
    const a = args[0] as AlertInfo | undefined;
    if (name === 'alert' && a?.on_disk_ms !== undefined && a.category === 'system.reboot' && a.pid < 4_194_304) latencies.push(a.on_disk_ms);
    return orig.call(this, name, ...args);
  };
  await execCommand([agent], { mode: 'observe', log: join(dir, 'bench.ndjson'), quiet: true, socket: 'off' });
  Pipeline.prototype.emit = orig;
  console.log(JSON.stringify({ bench: 'reboot-to-alert-on-disk', unit: 'ms', calls: CALLS, pace_ms: 10, alerts: latencies.length, ...summary(latencies) }));

  // the floor
  const mount = findCgroupV2Mount();
  if (!mount) throw new Error('needs cgroup v2');
  const group = join(mount, 'redline', `bench-reboot-floor-${process.pid}`);
  createGroup(group);
  const tracer = await bareTracer('syscalls:sys_enter_reboot', group);
  const floor = tracer.latencies;
  try {
    const a = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$1"', group, agent], { stdio: 'ignore' });
    await new Promise((r) => a.on('exit', r));
    const t0 = Date.now();
    while (floor.length < CALLS && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
    console.log(JSON.stringify({ bench: 'reboot-to-bpftrace-reader (floor)', unit: 'ms', calls: CALLS, pace_ms: 10, events: floor.length, ...summary(floor) }));
  } finally {
    tracer.stop();
    const t0 = Date.now();
    while (groupPids(group).length > 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
    removeGroup(group);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
