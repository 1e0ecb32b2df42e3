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

/**
 * What the poll sensor cannot see (the event types the eBPF sensor alone reports). A rule fed
 * only by these is inactive with the poll; one that also takes an event the poll reports is
 * live, for that part.
 */
export const POLL_BLIND: Record<string, string> = {
  signal: 'signals are not visible in /proc (a protected or allowed process that vanishes is reported instead)',
  setsid: 'a new session is seen only as the process\'s session id at the next pass, not as the call',
  reparent: 'a process whose parent exits is not followed as such between passes',
  reboot: 'a reboot or kexec call is a syscall: nothing in /proc shows the attempt',
  link: 'hard and symbolic links are syscalls; the watched folders catch new names of the weights',
  connect: 'outgoing connections are not listed per process by the poll',
};
