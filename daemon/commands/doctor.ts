// `redline doctor`: which sensors and actions work on this host, and why not.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCgroupV2Mount, findFreezerV1Mount } from '../cgroup.js';
import { ebpfUnavailableReason, findExecutable, tracefsMounted } from '../sensors/ebpf/host.js';
import { gpuUnavailableReason } from '../sensors/gpu/index.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

function cgroupChecks(): Check[] {
  const mount = findCgroupV2Mount();
  const out: Check[] = [{ name: 'cgroup v2', ok: mount !== null, detail: mount ? `mounted at ${mount}` : 'no cgroup2 mount: exec and --subject-cgroup/--subject-pid need it' }];
  if (mount && process.getuid?.() === 0) {
    const probe = join(mount, 'redline', `doctor-${process.pid}`);
    try {
      mkdirSync(probe, { recursive: true });
      const freeze = existsSync(join(probe, 'cgroup.freeze'));
      const kill = existsSync(join(probe, 'cgroup.kill'));
      if (freeze) {
        writeFileSync(join(probe, 'cgroup.freeze'), '1');
        const frozen = /frozen 1/.test(readFileSync(join(probe, 'cgroup.events'), 'utf8'));
        writeFileSync(join(probe, 'cgroup.freeze'), '0');
        out.push({ name: 'action freeze', ok: frozen, detail: frozen ? 'cgroup.freeze works' : 'cgroup.freeze did not report frozen' });
      } else out.push({ name: 'action freeze', ok: false, detail: 'no cgroup.freeze (kernel < 5.2): falls back to the v1 freezer or SIGSTOP' });
      out.push({ name: 'action kill', ok: true, detail: kill ? 'cgroup.kill' : 'SIGKILL of every pid (no cgroup.kill, kernel < 5.14)' });
    } catch (err) {
      out.push({ name: 'action freeze', ok: false, detail: `cannot create a test group: ${(err as Error).message}` });
    } finally {
      try {
        rmdirSync(probe);
      } catch {
        // nothing to remove
      }
    }
  } else if (mount) out.push({ name: 'action freeze', ok: false, detail: 'needs root to create and freeze groups' });
  const v1 = findFreezerV1Mount();
  out.push({ name: 'v1 freezer', ok: v1 !== null, detail: v1 ? `mounted at ${v1} (fallback)` : 'not mounted (only needed without cgroup v2)' });
  return out;
}

export function doctorChecks(nvidiaSmi = 'nvidia-smi'): Check[] {
  const why = ebpfUnavailableReason();
  const gpu = gpuUnavailableReason(nvidiaSmi);
  const checks: Check[] = [
    { name: 'root', ok: process.getuid?.() === 0, detail: process.getuid?.() === 0 ? 'running as root' : 'not root: eBPF and cgroup actions need root' },
    { name: 'bpftrace', ok: findExecutable('bpftrace') !== null, detail: findExecutable('bpftrace') ?? 'not found (apt-get install -y bpftrace)' },
    { name: 'tracefs', ok: tracefsMounted(), detail: tracefsMounted() ? 'mounted' : 'not mounted: redline mounts it at start (mount -t tracefs nodev /sys/kernel/tracing)' },
    { name: 'sensor ebpf', ok: why === null, detail: why ?? 'available: exec, fork, exit, signal, setsid, open/creat and link tracepoints, filtered in the kernel' },
    { name: 'sensor poll', ok: false, detail: 'not implemented yet' },
    { name: 'sensor weights', ok: why === null, detail: why === null ? 'file opens, links and writes of the subject (eBPF), fingerprinted by content on a worker thread; chokidar on --watch and weight folders' : `needs the eBPF sensor: ${why}` },
    { name: 'sensor gpu', ok: gpu === null, detail: gpu ?? `${nvidiaSmi} answers; polled asynchronously with a timeout` },
    ...cgroupChecks(),
    { name: 'action snapshot', ok: existsSync('/proc/self/stat'), detail: '/proc readable' },
    { name: 'output audit log', ok: true, detail: 'NDJSON, hash-chained, synchronous writes' },
  ];
  return checks;
}

export function doctorCommand(out = process.stdout, nvidiaSmi?: string): number {
  for (const c of doctorChecks(nvidiaSmi)) out.write(`${c.ok ? 'ok  ' : 'no  '} ${c.name.padEnd(18)} ${c.detail}\n`);
  return 0;
}
