// What a test needs from the host, and why it skips when the host lacks it.
import { findCgroupV2Mount } from '../../daemon/cgroup.js';
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
