// Every process redline knows: identity (pid + start time), fork-time ancestry that survives
// reparenting, and the flags rules look at. Seeded by one /proc scan, then fed by events.
import type { SensorEvent } from './events.js';
import { ancestorsOf, type Enriched, MAX_ANCESTRY, type ProcInfo } from './process.js';
export { ancestorsOf, type Enriched, type ProcInfo } from './process.js';
import { isRunning, listPids, readCmdline, readStat, realUid } from './sensors/proc/read.js';
import { SignalTargets } from './signal-targets.js';
import { SubjectCommands } from './subject-commands.js';

export interface TableOptions {
  /** /proc-based subject membership, for processes not learnt from the sensor */
  isSubject: (pid: number) => boolean;
  allowPids?: Iterable<number>;
  protectPids?: Iterable<number>;
  monitorPids?: Iterable<number>;
  /** how long an exited process stays resolvable by pid */
  keepExitedMs?: number;
}

function ticksFromEventTime(epochMs: number): number {
  // a stand-in start time for a process that vanished before /proc could be read:
  // unique enough to separate it from a later process with the same pid
  return -Math.round(epochMs * 100);
}

export class ProcessTable {
  private readonly byPid = new Map<number, ProcInfo>();
  /** the subject's command lines, newest last (bounded) */
  private readonly commands = new SubjectCommands();
  /** whom a signal reaches */
  private readonly signals = new SignalTargets(this);
  private readonly allow: Set<number>;
  private readonly protect: Set<number>;
  private readonly monitor: Set<number>;
  private readonly keepExitedMs: number;


  constructor(private readonly opts: TableOptions) {
    this.allow = new Set(opts.allowPids ?? []);
    this.protect = new Set(opts.protectPids ?? []);
    this.monitor = new Set(opts.monitorPids ?? []);
    this.keepExitedMs = opts.keepExitedMs ?? 30_000;
  }

  get size(): number {
    return this.byPid.size;
  }

  /** one scan of /proc; parents are linked after every process is read */
  seed(): void {
    for (const pid of listPids()) this.readProc(pid, null);
    for (const p of this.byPid.values()) this.linkParent(p);
  }

  setMonitorPids(pids: Iterable<number>): void {
    for (const pid of pids) {
      this.monitor.add(pid);
      const p = this.byPid.get(pid);
      if (p) {
        p.monitor = true;
        p.protected = true;
      }
    }
  }

  isMonitorPid(pid: number): boolean {
    return this.monitor.has(pid);
  }

  /** every process the table holds now (live, and exited ones kept for a while) */
  processes(): IterableIterator<ProcInfo> {
    return this.byPid.values();
  }

  get(pid: number): ProcInfo | undefined {
    return this.byPid.get(pid);
  }

  all(): IterableIterator<ProcInfo> {
    return this.byPid.values();
  }

  /** the process for a pid: from the table, else from /proc, else an unknown placeholder */
  lookup(pid: number): ProcInfo {
    const known = this.byPid.get(pid);
    if (known) return known;
    const read = this.readProc(pid, null);
    if (read) {
      this.linkParent(read);
      return read;
    }
    return this.unknown(pid);
  }

  /**
   * A process outside the subject, whose execs the kernel does not report: when the event's
   * comm says it has run another program since the table read it, read /proc again (or, when
   * it is gone, keep the event's comm, which the kernel took at the event).
   */
  private outsider(ev: { pid: number; comm?: string }): ProcInfo {
    const p = this.lookup(ev.pid);
    if (!ev.comm || !p.known || p.comm === ev.comm || p.subject) return p;
    const st = readStat(ev.pid);
    if (st && st.starttime === p.start) {
      const args = readCmdline(ev.pid);
      if (args && args.length > 0) {
        p.args = args;
        p.exe = args[0] ?? p.exe;
      }
      p.comm = st.comm;
    } else {
      p.comm = ev.comm;
      p.args = [ev.comm];
    }
    return p;
  }

  /** like lookup but null instead of a placeholder */
  find(pid: number): ProcInfo | null {
    const p = this.lookup(pid);
    return p.known ? p : null;
  }

  /** a placeholder for a process nothing is known of */
  unknown(pid: number): ProcInfo {
    return this.make({ pid, start: 0, ppid: 0, pgid: 0, sid: 0, uid: -1, comm: '', exe: '', args: [], parent: null, known: false, subject: false });
  }

  private make(init: { pid: number; start: number; ppid: number; pgid: number; sid: number; uid: number; comm: string; exe: string; args: string[]; parent: ProcInfo | null; known: boolean; subject: boolean }): ProcInfo {
    return {
      ...init,
      key: `${init.pid}:${init.start}`,
      allowed: this.allow.has(init.pid),
      protected: this.protect.has(init.pid) || this.monitor.has(init.pid),
      monitor: this.monitor.has(init.pid),
      replica: false,
      loadedWeights: false,
      replicaGen: 0,
      readWeights: false,
      alive: init.known,
      children: new Set(),
    };
  }

  private readProc(pid: number, parent: ProcInfo | null): ProcInfo | null {
    const st = readStat(pid);
    if (!st) return null;
    const args = readCmdline(pid) ?? [];
    const p = this.make({
      pid,
      start: st.starttime,
      ppid: st.ppid,
      pgid: st.pgid,
      sid: st.sid,
      uid: realUid(pid),
      comm: st.comm,
      exe: args[0] ?? '',
      args,
      parent,
      known: true,
      subject: this.opts.isSubject(pid),
    });
    p.alive = st.state !== 'Z' && st.state !== 'X';
    this.byPid.set(pid, p);
    return p;
  }

  private linkParent(p: ProcInfo): void {
    if (p.parent || p.ppid <= 0) return;
    let parent = this.byPid.get(p.ppid);
    if (!parent) {
      const depth = ancestorsOf(p).length;
      if (depth < MAX_ANCESTRY) {
        parent = this.readProc(p.ppid, null) ?? undefined;
        if (parent) this.linkParent(parent);
      }
    }
    if (parent && parent !== p) {
      p.parent = parent;
      parent.children.add(p);
      // the allowed server's workers map the weights too: outside the subject, they are its
      if (parent.allowed && !p.subject) p.allowed = true;
    }
  }

  /** updates the table from one event and returns the event with its processes filled in */
  apply(ev: SensorEvent): Enriched {
    switch (ev.type) {
      case 'fork':
        return this.onFork(ev.pid, ev.child_pid, ev);
      case 'exec': {
        const p = this.subjectProc(ev.pid, ev);
        p.comm = ev.comm ?? p.comm;
        p.exe = ev.filename;
        p.nsPid = ev.ns_pid;
        p.pidns = ev.pidns;
        // the kernel read the argv at the exec; /proc only for one longer than it reads
        const args = ev.args ?? readCmdline(ev.pid);
        p.args = args && args.length > 0 ? args : [ev.filename];
        if (p.subject) this.commands.remember(p);
        return this.plain(ev, p);
      }
      case 'exit': {
        const p = this.subjectProc(ev.pid, ev);
        p.alive = false;
        if (ev.pidns !== undefined) {
          p.nsPid = ev.ns_pid;
          p.pidns = ev.pidns;
        }
        const timer = setTimeout(() => {
          if (this.byPid.get(p.pid) === p) this.byPid.delete(p.pid);
          p.parent?.children.delete(p);
        }, this.keepExitedMs);
        timer.unref();
        return this.plain(ev, p);
      }
      case 'setsid': {
        const p = this.subjectProc(ev.pid, ev);
        p.sid = ev.pid;
        p.pgid = ev.pid;
        p.madeSession = true;
        return this.plain(ev, p);
      }
      case 'reparent': {
        const p = this.lookup(ev.pid);
        p.ppid = ev.new_ppid;
        if (ev.sid !== undefined && ev.sid > 0) p.sid = ev.sid;
        // whose session it is in decides whether it left on purpose (rules/process.yaml)
        const leader = p.sid > 0 ? this.byPid.get(p.sid) : undefined;
        const leaderAlive = leader ? leader.alive && !this.reborn(leader) : p.sid > 0 && isRunning(p.sid);
        return { ...this.plain(ev, p), sessionLeaderAlive: leaderAlive, sessionMadeBySubject: leader?.madeSession === true && leader.subject };
      }
      case 'signal': {
        const p = this.subjectProc(ev.pid, ev);
        return this.signals.resolve(ev, p);
      }
      case 'attempt': {
        // (whom it aimed at, as a signal's target: the rules ask whether it is the monitor's)
        const p = this.subjectProc(ev.pid, ev);
        // the loader's line may come before the exec line of the same process (two sensors, two
        // pipes): the kernel's comm at the call is the name it runs under now
        if (ev.comm && p.comm !== ev.comm) p.comm = ev.comm;
        const out = this.plain(ev, p);
        if (ev.target_pid !== undefined && ev.target_pid > 0) {
          out.target = this.lookup(ev.target_pid);
          out.targets = [out.target];
        }
        return out;
      }
      case 'weights_copy': {
        // a folder watcher's (or the poll's) find has no known writer: never mark anyone a subject for it
        // (nor for a copy made outside the subject: it is not the subject's process)
        const p = ev.seen_by === 'watch' || ev.seen_by === 'poll' || ev.outside_subject ? this.outsider(ev) : this.subjectProc(ev.pid, ev);
        return { ...this.plain(ev, p), generation: ev.generation, liveReplicas: this.liveReplicas() };
      }
      case 'weights_open': {
        const p = this.subjectProc(ev.pid, ev);
        if (!ev.write) p.readWeights = true;
        return this.plain(ev, p);
      }
      case 'open': {
        const out = this.plain(ev, this.subjectProc(ev.pid, ev));
        // a group frozen or killed: its processes are the targets (rules/process.yaml freeze-outside)
        if (ev.victims && ev.victims.length > 0) {
          out.targets = ev.victims.map((pid) => this.lookup(pid));
          out.target = out.targets.find((t) => !t.subject) ?? out.targets[0] ?? null;
        }
        return out;
      }
      case 'link':
      case 'listen':
      case 'connect':
      case 'reboot':
      case 'file_change':
      case 'disk_fill':
      case 'scan':
        return this.plain(ev, this.subjectProc(ev.pid, ev));
      case 'enospc':
      case 'proc_read':
      case 'listing':
        // raw feeds of the disk and scan accounting: the rules never see them
        return this.plain(ev, this.lookup(ev.pid));
      case 'file_bytes':
        // counted for every process on the host: the subject's only when the kernel said so
        return this.plain(ev, ev.subject ? this.subjectProc(ev.pid, ev) : this.lookup(ev.pid));
      case 'vanished':
        // gone: what the table knew of it (protected, allowed) is what the rules judge
        return this.plain(ev, this.lookup(ev.pid));
      case 'listen_close':
        // the process may be gone: closing was its exit
        return this.plain(ev, this.lookup(ev.pid));
      case 'probe':
        // the listener, as far as /proc still knows it
        return this.plain(ev, this.lookup(ev.pid));
      case 'survivor':
        // a process of the group: the subject's, alive or not by the time it is judged
        return this.plain(ev, this.subjectProc(ev.pid, ev));
      case 'weights_withdrawn':
        // a correction of an earlier event: the writer as the table knows it, nothing marked
        return this.plain(ev, this.lookup(ev.pid));
      case 'sensor_trouble':
        // the daemon's own event: its process is the daemon
        return this.plain(ev, this.lookup(ev.pid));
      case 'weights_load': {
        // it holds the weights as a server does: a replica, and so are the children it starts
        // (one outside the subject is a replica too, though not the subject's)
        const p = ev.outside_subject ? this.outsider(ev) : this.subjectProc(ev.pid, ev);
        // the allowed server (and the daemon) load the weights by right: never replicas
        if (!p.allowed && !p.monitor) this.becomeReplica(p);
        const tied = ev.outside_subject ? { ...ev, ...this.commands.tieOf(ev, p) } : ev;
        return { ...this.plain(tied, p), generation: p.replicaGen, liveReplicas: this.liveReplicas() };
      }
      case 'gpu': {
        // GPU usage is reported for any process on the host; subject membership comes from /proc
        const p = this.lookup(ev.pid);
        // a replica outside the subject (started for it) counts like one inside
        if (!ev.replica_like || !(p.subject || p.replica) || p.allowed) return this.plain(ev, p);
        this.becomeReplica(p);
        return { ...this.plain(ev, p), generation: p.replicaGen, liveReplicas: this.liveReplicas() };
      }
    }
  }

  /**
   * It holds the weights as a server does: a replica, and so are the children it starts.
   * Its generation is one more than the nearest ancestor that loaded them itself.
   */
  private becomeReplica(p: ProcInfo): void {
    p.replica = true;
    if (p.loadedWeights) return;
    p.loadedWeights = true;
    const maker = ancestorsOf(p).find((a) => a.loadedWeights);
    p.replicaGen = (maker?.replicaGen ?? 0) + 1;
  }

  /** the pid of an exited process names a newer one now */
  private reborn(p: ProcInfo): boolean {
    const st = readStat(p.pid);
    return st !== null && st.starttime !== p.start;
  }

  /** processes alive now that loaded the weights themselves */
  liveReplicas(): number {
    let n = 0;
    for (const p of this.byPid.values()) if (p.loadedWeights && p.alive) n++;
    return n;
  }

  /** a process the sensor saw acting: it passed the in-kernel subject filter */
  private subjectProc(pid: number, ev: SensorEvent): ProcInfo {
    let p = this.byPid.get(pid);
    // an event about a process that has exited (the weights tracker reports after the fact)
    // is still that process's, unless the pid already names another one
    if (!p || (!p.alive && ev.type !== 'exit' && ev.type !== 'reparent' && this.reborn(p))) {
      p = this.readProc(pid, null) ?? this.make({ pid, start: ticksFromEventTime(ev.time), ppid: 0, pgid: 0, sid: 0, uid: ev.uid ?? -1, comm: ev.comm ?? '', exe: '', args: [], parent: null, known: true, subject: true });
      this.byPid.set(pid, p);
      this.linkParent(p);
    }
    p.subject = true;
    // the process may have exited before /proc could say who it ran as; the sensor knows
    if (p.uid < 0 && ev.uid !== undefined) p.uid = ev.uid;
    return p;
  }

  private onFork(parentPid: number, childPid: number, ev: SensorEvent): Enriched {
    const parent = this.subjectProc(parentPid, ev);
    const old = this.byPid.get(childPid);
    if (old) old.alive = false;
    const st = readStat(childPid);
    const child = this.make({
      pid: childPid,
      start: st?.starttime ?? ticksFromEventTime(ev.time),
      ppid: parentPid,
      pgid: st?.pgid ?? parent.pgid,
      sid: st?.sid ?? parent.sid,
      uid: parent.uid,
      comm: parent.comm,
      exe: parent.exe,
      args: parent.args,
      parent,
      known: true,
      subject: true,
    });
    // a child of a replica is a replica until it proves otherwise (later sensors refine this)
    child.replica = parent.replica;
    child.replicaGen = parent.replicaGen;
    child.readWeights = parent.readWeights;
    parent.children.add(child);
    this.byPid.set(childPid, child);
    return { ...this.plain(ev, parent), target: child, targets: [child] };
  }

  private plain(ev: SensorEvent, p: ProcInfo): Enriched {
    return { event: ev, proc: p, target: null, targets: [], broadcast: false, group: 0 };
  }
}
