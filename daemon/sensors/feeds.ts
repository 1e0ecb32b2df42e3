// What feeds a rule: its `events:` list is its declaration. With the poll sensor some event
// types never come (POLL_BLIND); a rule fed only by those is inactive there, one fed by some of
// them is live for the rest. `doctor`, `rules check` and the daemon's sensor record list them.

/**
 * What the poll sensor cannot see (the event types the eBPF sensor alone reports). A rule fed
 * only by these is inactive with the poll; one that also takes an event the poll reports is
 * live, for that part.
 */
export const POLL_BLIND: Record<string, string> = {
  signal: 'signals are not visible in /proc (a protected or allowed process that vanishes is reported instead)',
  reboot: 'a reboot or kexec call is a syscall: nothing in /proc shows the attempt',
  link: 'hard and symbolic links are syscalls; the watched folders catch new names of the weights',
  connect: 'outgoing connections are not listed per process by the poll',
  file_change: 'removing, renaming, truncating and re-moding a file are syscalls: /proc shows none of them',
  attempt: 'ptrace, bpf(), module loads and the guard\'s refusals are syscalls and kernel hooks: /proc shows none of them',
  scan: 'the scan accounting counts syscalls (opens of other processes\' /proc files, folder listings, connects) that /proc does not show',
};

export interface InactiveRule {
  rule: string;
  file: string;
  line: number;
  /** the event types it takes that the poll never reports */
  blind: string[];
  /** none of its events comes: it can never fire with the poll */
  inactive: boolean;
}

/** the rules the poll sensor starves, wholly (inactive) or partly */
export function starvedByPoll(rules: readonly { id: string; file: string; line: number; events: readonly string[] }[]): InactiveRule[] {
  const out: InactiveRule[] = [];
  for (const r of rules) {
    const blind = r.events.filter((e) => e in POLL_BLIND);
    if (blind.length === 0) continue;
    out.push({ rule: r.id, file: r.file, line: r.line, blind, inactive: blind.length === r.events.length });
  }
  return out;
}

/** one line per rule, for people */
export function describeStarved(list: InactiveRule[]): string[] {
  return list.map((r) => `${r.inactive ? 'inactive' : 'partly  '} ${r.rule} (${r.file}:${r.line}): ${r.inactive ? 'fed only by' : 'never gets'} ${r.blind.join(', ')}`);
}
