// Whom a signal reaches: one process, a thread's process, a process group, everyone (-1),
// or, from a sender in a pid namespace of its own, the host's pid of what it named there.
import type { SensorEvent } from './events.js';
import type { Enriched, ProcInfo } from './process.js';
import { hostPidIn, listPids, pidnsOf, readStat, readStatus } from './sensors/proc/read.js';

type SignalEvent = Extract<SensorEvent, { type: 'signal' }>;

/** what of the process table a signal's targets are found in */
export interface TargetTable {
  lookup(pid: number): ProcInfo;
  unknown(pid: number): ProcInfo;
  processes(): IterableIterator<ProcInfo>;
}

function plain(ev: SensorEvent, p: ProcInfo): Enriched {
  return { event: ev, proc: p, target: null, targets: [], broadcast: false, group: 0 };
}

export class SignalTargets {
  /** the daemon's own pid namespace: signals sent in it name host pids */
  private readonly ownPidns = pidnsOf('self');

  constructor(private readonly t: TargetTable) {}

  resolve(raw: SignalEvent, p: ProcInfo): Enriched {
    if (raw.target_unresolved) return { ...plain(raw, p), target: this.t.unknown(0) };
    // a sender inside a pid namespace names its target there: the host's pid is looked up, and
    // the event the rules see names both (target_ns_pid: what the sender named)
    // (what the sender named, also when this runs again for a target late to appear)
    const named = raw.target_ns_pid ?? raw.target_pid;
    const translated = this.named(raw, named) ? null : this.inHostNamespace(raw, named);
    const out = plain(translated?.ev ?? raw, p);
    const t = translated ? translated.target : named;
    if (t === null) {
      out.target = this.t.unknown(0);
      return out;
    }
    if (t === -1) {
      out.broadcast = true;
      return out;
    }
    if (t <= 0) {
      out.group = t === 0 ? p.pgid : -t;
      out.targets = this.groupMembers(out.group);
      out.target = out.targets.find((x) => !x.subject) ?? out.targets[0] ?? this.t.unknown(0);
      return out;
    }
    // tkill names a thread (a daemon's worker thread included): resolve it to its process
    const tgid = raw.syscall === 'tkill' ? readStatus(t)?.tgid : undefined;
    const tp = this.t.lookup(tgid ?? t);
    // killed by another door before anyone looked: the kernel's name for it
    if (!tp.known && !tp.comm && raw.target_comm) tp.comm = raw.target_comm;
    out.target = tp;
    out.targets = [tp];
    return out;
  }

  /** the target `t` the sender named is a host pid already: sent in the daemon's pid namespace, a broadcast (-1), its own group (0), a pidfd's */
  private named(ev: SignalEvent, t: number): boolean {
    return ev.pidns === undefined || ev.pidns === this.ownPidns || t === 0 || t === -1 || ev.syscall === 'pidfd_send_signal';
  }

  /**
   * The target `t`, named in the sender's pid namespace, as a host pid (a negative one for a
   * group), or null when nothing there has it; with the event the rules see, a new one that
   * keeps what the sender named (target_ns_pid). The sensor's event stays as it was.
   */
  private inHostNamespace(ev: SignalEvent, t: number): { ev: SignalEvent; target: number | null } {
    const named = Math.abs(t);
    // a live process with that pid there; else one that exited (the signal may have killed it
    // before this ran: its exit line said who it was inside); else /proc
    let host: number | null = null;
    for (const p of this.t.processes()) {
      if (p.pidns !== ev.pidns || (p.nsPid ?? p.pid) !== named) continue;
      host = p.pid;
      if (p.alive) break;
    }
    host ??= hostPidIn(ev.pidns as number, named);
    if (host === null) return { ev: { ...ev, target_ns_pid: t }, target: null };
    const target = t < 0 ? -host : host;
    return { ev: { ...ev, target_ns_pid: t, target_pid: target }, target };
  }

  private groupMembers(pgid: number): ProcInfo[] {
    const out: ProcInfo[] = [];
    for (const pid of listPids()) {
      const st = readStat(pid);
      if (!st || st.pgid !== pgid) continue;
      const p = this.t.lookup(pid);
      p.pgid = st.pgid;
      out.push(p);
    }
    return out;
  }
}
