// The poll sensor: for hosts where redline has no root or no bpftrace. Every interval it lists
// the processes (/proc, or ps-list where /proc is not mounted), and for the subject's: what
// they run, the files they hold open (with the position each fd has reached, which for a file
// read or written in order is its bytes moved), and the files they map. It reports what it
// finds as the same events the eBPF sensor prints, so the same tracker, table and rules judge
// them.
//
// What a poll cannot see, by design: a process that lives less than one interval (its exec,
// its files); signals (a kill is inferred only when a protected or allowed process vanishes
// while the subject runs); bytes moved by pread or io_uring (the file position does not move);
// links, reboots and connects. A new session and a new parent are seen as changes between two
// passes. Rules that need what it cannot see are inactive with it (`redline doctor`,
// `redline rules check`).
import { EventEmitter } from 'node:events';
import { readlinkSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SensorEvent } from '../../events.js';
import { listPids, readCmdline, readStat } from '../proc/read.js';
import { type SensorHealth, SensorStartError } from '../sensor.js';
import { readFds, readMaps, type Tracked } from './fds.js';
import { psListSnapshot, type PsEntry } from './ps-list.js';

/** working folders not watched for copies: the root and the system's trees (too wide to watch) */
const NOT_WATCHED = /^\/(?:$|(?:proc|sys|dev(?!\/shm(?:\/|$))|usr|bin|sbin|lib|lib64|etc|boot|run|var|snap)(?:\/|$)|(?:tmp|home|root|mnt|media|opt|srv)$)/;
/** folders reported for watching, at most */
const MAX_FOLDERS = 64;
/** the mappings of processes outside the subject are read this many intervals apart */
const HOSTWIDE_EVERY = 10;

export interface PollOptions {
  /** is this process (new to the sensor) the subject's? Descendants of the subject's are, too */
  inScope: (pid: number) => boolean;
  intervalMs: number;
  /** processes whose disappearance while the subject runs is reported (protected and allowed) */
  watched: () => number[];
  /** a file worth reading other processes' mappings for (registered weights): dev, ino */
  hostWide?: (dev: number, ino: number) => boolean;
  /** where processes are listed from; default: /proc when it is mounted, else ps-list */
  source?: 'proc' | 'ps-list';
  /**
   * the subject's processes now, where that is one cheap read (its cgroup's member list): a
   * process seen before it joined (the subject's first, moving itself in) becomes the subject's
   */
  members?: () => number[];
}

export class PollSensor extends EventEmitter {
  readonly name = 'poll';
  readonly source: 'proc' | 'ps-list';
  private readonly procs = new Map<number, Tracked>();
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;
  private events = 0;
  private first = true;
  private failing = '';
  /** how long the last scan took (ms) and the longest */
  lastScanMs = 0;
  maxScanMs = 0;
  silentParts: string[] = [];

  constructor(private readonly o: PollOptions) {
    super();
    this.source = o.source ?? (hasProc() ? 'proc' : 'ps-list');
  }

  /** the subject's processes as of the last pass */
  subjectPids(): number[] {
    return [...this.procs].filter(([, t]) => t.subject).map(([pid]) => pid);
  }

  /** the poll counts bytes itself, from file positions and mappings */
  bytesBy(): 'poll' {
    return 'poll';
  }

  ownPids(): number[] {
    return [];
  }

  /** the first pass: one that fails means this poll cannot see (the command stops, exit 2) */
  async start(): Promise<void> {
    try {
      if (this.source === 'proc') this.scanProc();
      else this.scanList(await psListSnapshot());
    } catch (err) {
      throw new SensorStartError(`the poll sensor cannot list processes (${this.source}): ${(err as Error).message}`);
    } finally {
      this.first = false;
      this.ticks++;
    }
    this.timer = setInterval(() => void this.scan(), this.o.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** a scan now: once it returns, all the poll can see up to now has been reported */
  async ping(): Promise<boolean> {
    await this.scan();
    return this.timer !== null;
  }

  health(): SensorHealth {
    return {
      name: this.name,
      running: this.timer !== null,
      restarts: 0,
      lost: 0,
      events: this.events,
      detail: `${this.source} every ${this.o.intervalMs} ms; last scan ${this.lastScanMs.toFixed(1)} ms, longest ${this.maxScanMs.toFixed(1)} ms${this.failing ? `; ${this.failing}` : ''}`,
    };
  }

  private emitEvent(ev: SensorEvent): void {
    this.events++;
    this.emit('event', ev);
  }

  /** (what the file reads find goes out as this sensor's events) */
  private readonly out = (ev: SensorEvent) => this.emitEvent(ev);

  /** one pass; a pass already running is joined, never run twice at once */
  private scan(): Promise<void> {
    this.inFlight ??= this.pass().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private inFlight: Promise<void> | null = null;

  private async pass(): Promise<void> {
    const t0 = performance.now();
    try {
      if (this.source === 'proc') this.scanProc();
      else this.scanList(await psListSnapshot());
      this.failing = '';
    } catch (err) {
      // a pass that failed saw nothing: the monitor is blind for it (monitor.degraded, high;
      // fail-closed freezes). Reported once while the same failure repeats; the next pass tries again
      const why = `a poll pass failed: ${(err as Error).message}`;
      if (why !== this.failing) this.emit('trouble', { sensor: this.name, reason: 'failed', detail: why });
      this.failing = why;
    } finally {
      this.first = false;
      this.ticks++;
      this.lastScanMs = performance.now() - t0;
      this.maxScanMs = Math.max(this.maxScanMs, this.lastScanMs);
    }
  }

  private scanProc(): void {
    const now = Date.now();
    const seen = new Set<number>();
    for (const pid of this.o.members?.() ?? []) {
      const t = this.procs.get(pid);
      if (t && !t.subject) this.joined(pid, t, now);
    }
    const pids = listPids();
    for (const pid of pids) seen.add(pid);
    // the subject's exits first: an orphan found in this pass is judged with its old session leader gone
    for (const [pid, t] of this.procs) if (t.subject && !seen.has(pid)) this.gone(pid, t, now);
    for (const pid of pids) {
      let t = this.procs.get(pid);
      if (t?.subject) {
        // the same process still (a pid reused between two passes is a new one)
        const st = readStat(pid);
        if (!st) continue;
        if (st.starttime !== t.start) {
          this.gone(pid, t, now);
          t = undefined;
        } else {
          this.execed(pid, t, st.comm, now);
          this.moves(pid, t, st.ppid, st.sid, now);
        }
      }
      if (!t) t = this.found(pid, now);
      if (!t?.subject) continue;
      this.workingFolder(pid);
      if (readFds(pid, t, now, this.out)) this.newSocket = true;
      readMaps(pid, t, now, true, this.first, this.out);
    }
    // the others last: one watched that is gone while the subject ran (found in this pass or before)
    const subjectRunning = [...this.procs.values()].some((t) => t.subject);
    for (const [pid, t] of this.procs) if (!seen.has(pid)) this.gone(pid, t, now, subjectRunning);
    if (this.ticks % HOSTWIDE_EVERY === 0 && this.o.hostWide) this.hostWide(now);
    if (this.newSocket) {
      this.newSocket = false;
      if (!this.first) this.emit('sockets');
    }
  }

  /** a subject process opened a socket during this pass ('sockets' is emitted after it) */
  private newSocket = false;

  /** a process not seen before: the subject's when in scope or a child of the subject's */
  private found(pid: number, now: number): Tracked | undefined {
    const st = readStat(pid);
    if (!st || pid === process.pid) return undefined;
    const parent = this.procs.get(st.ppid);
    const subject = (parent?.subject === true && parent.start <= st.starttime) || this.o.inScope(pid);
    const t: Tracked = { start: st.starttime, ppid: st.ppid, sid: st.sid, subject, comm: st.comm, exe: '', args: '', fds: new Map(), mapped: new Map() };
    this.procs.set(pid, t);
    if (!subject) return t;
    t.exe = exeOf(pid);
    const args = readCmdline(pid) ?? [];
    t.args = args.join('\0');
    this.namedFolders(pid, args);
    // processes there before the first pass are the table's own reading of /proc
    if (!this.first) this.appeared(pid, st.ppid, st.sid, parent, st.comm, t.exe || (args[0] ?? st.comm), args, now);
    return t;
  }

  /**
   * A subject process new to the poll, as the eBPF sensor would have reported it: a fork of its
   * subject parent, then its exec. One whose parent is not the subject's was orphaned (or
   * started from outside, as the subject's first process is by the daemon) before a pass saw
   * it: a reparent, its old parent unknown (0). One of a subject parent that leads a session
   * its parent does not lead made it with setsid().
   */
  private appeared(pid: number, ppid: number, sid: number, parent: Tracked | undefined, comm: string, filename: string, args: string[], now: number): void {
    const fromSubject = parent?.subject === true;
    if (fromSubject) this.emitEvent({ type: 'fork', time: now, pid: ppid, child_pid: pid });
    this.emitEvent({ type: 'exec', time: now, pid, comm, filename, args });
    if (!fromSubject && ppid > 0) this.emitEvent({ type: 'reparent', time: now, pid, comm, old_ppid: 0, new_ppid: ppid, sid });
    if (fromSubject && sid === pid && parent.sid !== pid) this.emitEvent({ type: 'setsid', time: now, pid, comm });
  }

  /** folders the subject works in, reported once each ('folder'): where a copy too quick for a pass lands */
  private readonly folders = new Set<string>();

  private workingFolder(pid: number): string | null {
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      return null;
    }
    this.folder(cwd);
    return cwd;
  }

  /** the folders its command line names (a script's, a copy's destination), read against its cwd */
  private namedFolders(pid: number, args: string[]): void {
    const cwd = this.workingFolder(pid);
    for (const a of args.slice(0, 64)) {
      if (!a.includes('/') || a.length > 4096) continue;
      const path = resolve(cwd ?? '/', a);
      let dir = dirname(path);
      try {
        if (statSync(path).isDirectory()) dir = path;
      } catch {
        // not there (yet): its folder
      }
      this.folder(dir);
    }
  }

  /** a folder to report for watching (once; not the root or the system's trees) */
  folder(dir: string): void {
    if (!dir.startsWith('/') || NOT_WATCHED.test(dir) || this.folders.has(dir) || this.folders.size >= MAX_FOLDERS) return;
    this.folders.add(dir);
    this.emit('folder', dir);
  }

  /** a process seen outside the subject that is in it now (it moved itself in): from now on the subject's */
  private joined(pid: number, t: Tracked, now: number): void {
    const args = readCmdline(pid);
    if (args === null) return;
    t.subject = true;
    t.exe = exeOf(pid);
    t.args = args.join('\0');
    if (!this.first) this.emitEvent({ type: 'exec', time: now, pid, comm: t.comm, filename: t.exe || (args[0] ?? t.comm), args });
  }

  /** a subject process that runs something else now (it called exec between two passes) */
  private execed(pid: number, t: Tracked, comm: string, now: number): void {
    const exe = exeOf(pid);
    const args = readCmdline(pid);
    if (args === null) return;
    const joined = args.join('\0');
    if (exe === t.exe && joined === t.args && comm === t.comm) return;
    t.exe = exe;
    t.args = joined;
    t.comm = comm;
    this.namedFolders(pid, args);
    this.emitEvent({ type: 'exec', time: now, pid, comm, filename: exe || (args[0] ?? comm), args });
  }

  /** between two passes it left its session (setsid) or its parent (which exited) */
  private moves(pid: number, t: Tracked, ppid: number, sid: number, now: number): void {
    if (sid !== t.sid) {
      t.sid = sid;
      if (sid === pid) this.emitEvent({ type: 'setsid', time: now, pid, comm: t.comm });
    }
    if (ppid !== t.ppid) {
      this.emitEvent({ type: 'reparent', time: now, pid, comm: t.comm, old_ppid: t.ppid, new_ppid: ppid, sid });
      t.ppid = ppid;
    }
  }

  private gone(pid: number, t: Tracked, now: number, subjectRunning = false): void {
    this.procs.delete(pid);
    if (t.subject) {
      this.emitEvent({ type: 'exit', time: now, pid, comm: t.comm });
      return;
    }
    // a watched process vanished while the subject ran: a kill the poll could not see, maybe
    if (subjectRunning && this.o.watched().includes(pid)) {
      const subjectPids = [...this.procs].filter(([, p]) => p.subject).map(([p]) => p);
      this.emitEvent({ type: 'vanished', time: now, pid, comm: t.comm, subject_pids: subjectPids });
    }
  }

  /** the subject process's open files: new ones are opens; positions that moved are bytes */
  /** other processes' mappings of the files that matter (a replica a host service started) */
  private hostWide(now: number): void {
    const wanted = this.o.hostWide;
    if (!wanted) return;
    for (const [pid, t] of this.procs) {
      if (t.subject) continue;
      readMaps(pid, t, now, false, this.first, this.out, (m) => wanted(m.dev, m.ino));
    }
  }

  /** ps-list: processes only (no files), where /proc is not mounted */
  private scanList(list: PsEntry[]): void {
    const now = Date.now();
    const seen = new Set<number>();
    const members = new Set(this.o.members?.() ?? []);
    for (const e of list) seen.add(e.pid);
    for (const [pid, t] of this.procs) if (t.subject && !seen.has(pid)) this.gone(pid, t, now);
    for (const e of list) {
      // ps gives the command line as one string: its words are the best argv there is
      const args = e.cmd.split(' ');
      const filename = args[0] ?? e.name;
      let t = this.procs.get(e.pid);
      if (t && !t.subject && members.has(e.pid)) {
        // it moved itself into the subject's group after a pass saw it
        t.subject = true;
        this.emitEvent({ type: 'exec', time: now, pid: e.pid, comm: e.name, filename, args });
      } else if (t && t.comm !== e.name && t.subject) {
        t.comm = e.name;
        t.args = e.cmd;
        this.emitEvent({ type: 'exec', time: now, pid: e.pid, comm: e.name, filename, args });
      }
      if (!t && e.pid !== process.pid) {
        const parent = this.procs.get(e.ppid);
        const subject = parent?.subject === true || this.o.inScope(e.pid);
        t = { start: 0, ppid: e.ppid, sid: 0, subject, comm: e.name, exe: '', args: e.cmd, fds: new Map(), mapped: new Map() };
        this.procs.set(e.pid, t);
        if (subject && !this.first) this.appeared(e.pid, e.ppid, 0, parent, e.name, filename, args, now);
      }
    }
    const subjectRunning = [...this.procs.values()].some((t) => t.subject);
    for (const [pid, t] of this.procs) if (!seen.has(pid)) this.gone(pid, t, now, subjectRunning);
  }
}

function hasProc(): boolean {
  try {
    statSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
}

function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}
