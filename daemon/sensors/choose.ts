// Which process sensor a command runs: eBPF where it can (root, bpftrace), else the poll, as
// --sensor asks (auto: eBPF, falling back to the poll with the reason in the log and doctor).
import { ebpfUnavailableReason } from './ebpf/host.js';

export interface SensorChoice {
  kind: 'ebpf' | 'poll';
  /** with the poll under --sensor auto: why not eBPF */
  why?: string;
}

/** the choice, or a reason the command must stop (eBPF asked for and not possible here) */
export function chooseSensor(asked: 'auto' | 'ebpf' | 'poll'): SensorChoice | string {
  if (asked === 'poll') return { kind: 'poll' };
  const why = ebpfUnavailableReason();
  if (!why) return { kind: 'ebpf' };
  if (asked === 'ebpf') return `cannot monitor with --sensor ebpf: ${why}.\nUse --sensor poll (or auto) to watch with /proc instead; run \`redline doctor\` for what this host supports.`;
  return { kind: 'poll', why };
}
