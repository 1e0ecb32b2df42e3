// What a test needs from the host, and why it skips when the host lacks it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findCgroupV2Mount, removeGroup } from '../../daemon/cgroup.js';
import { ebpfUnavailableReason, ensureTracefs } from '../../daemon/sensors/ebpf/host.js';

/** null when root, bpftrace, tracefs and cgroup v2 are all there; else why not */
export function monitorSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (eBPF and cgroups)';
  const why = ebpfUnavailableReason();
  if (why) return why;
  const tf = ensureTracefs();
  if (tf) return tf;
  if (!findCgroupV2Mount()) return 'needs a cgroup v2 mount';
  return null;
}

export function cgroupSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create cgroups';
  if (!findCgroupV2Mount()) return 'needs a cgroup v2 mount';
  return null;
}

/**
 * Kills whatever is left in a subject's group (frozen or not: cgroup.kill reaches frozen
 * tasks) and removes it. Before a run it clears what a killed earlier run left behind; after
 * one, what a failing run left frozen.
 */
export async function sweepGroup(path: string): Promise<void> {
  try {
    writeFileSync(join(path, 'cgroup.kill'), '1');
  } catch {
    return; // no such group, or no cgroup.kill (kernel < 5.14): nothing this sweep can do
  }
  for (let i = 0; i < 50 && !removeGroup(path); i++) await new Promise((r) => setTimeout(r, 20));
}
