// The watchdog's answer to a monitor process that is held but alive: stopped (SIGSTOP), held
// by ptrace, or frozen or moved in cgroup v2. Killing it instead (as a loss) would leave the
// subject unwatched from then on: an agent that stops the monitor and copies the weights
// would never be seen. So the watchdog resumes it, and only a daemon that cannot be resumed
// is lost. Everything here reads /proc and cgroupfs directly: it runs every poll.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cgroupOfPid, isWithin, movePid, readEvents } from './cgroup.js';

export type HeldHow = 'stopped' | 'traced' | 'frozen-cgroup';

/** one line the watchdog prints to the daemon per resume (the daemon logs it: one writer) */
export interface ResumeAnswer {
  resumed: true;
  what: HeldHow;
  pids: number[];
  tracer: { pid: number; comm: string; cgroup: string | null } | null;
  /** the group the pid was found frozen or moved into */
  group: string | null;
  /** the group it was moved back to */
  home: string | null;
  /** from the poll that saw it held until it ran again */
  latency_ms: number;
}

/** a daemon still held this long after the first resume is lost (it cannot be freed) */
export const STUCK_MS = 300;

interface ProcStatus {
  state: string;
  tracer: number;
}

/** State and TracerPid of /proc/PID[/task/TID]/status; null when gone (or a zombie) */
function statusOf(path: string): ProcStatus | null {
  let text: string;
  try {
    text = readFileSync(`${path}/status`, 'utf8');
  } catch {
    return null;
  }
  const state = /^State:\s+(\S)/m.exec(text)?.[1] ?? '?';
  if (state === 'Z' || state === 'X') return null;
  return { state, tracer: Number(/^TracerPid:\s+(\d+)/m.exec(text)?.[1] ?? 0) };
}

/** a tracer of any of pid's threads (ptrace is per thread: one on a worker escapes the main's status) */
function threadTracer(pid: number): number {
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const t = statusOf(`/proc/${pid}/task/${tid}`)?.tracer ?? 0;
      if (t > 0) return t;
    }
  } catch {
    // gone
  }
  return 0;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

interface Episode {
  what: HeldHow;
  since: number;
  tracer: ResumeAnswer['tracer'];
  group: string | null;
  home: string | null;
}

export type Verdict = 'gone' | 'running' | 'held' | 'resumed' | 'stuck';

export class Resumer {
  /** each monitor pid's group when the watchdog first saw it */
  private readonly home = new Map<number, string>();
  private readonly held = new Map<number, Episode>();
  /** tracers already sent SIGKILL (one that takes a while to die is not named twice) */
  private readonly killed = new Set<number>();
  /** each group's frozen state, read once per pass (the daemon and its sensors share one) */
  private frozenIn = new Map<string, boolean>();

  /**
   * `mount`: the cgroup v2 mount (null: no cgroup check); `spare`: pids never to kill as a
   * tracer (the watchdog, the daemon); `subjectGroup`: never thawed here (the daemon's own
   * freeze of the subject must hold).
   */
  constructor(
    private readonly mount: string | null,
    private readonly spare: number[],
    private readonly subjectGroup: string | null,
  ) {}

  /** remembers pid's group as the one it belongs in (only the first time) */
  adopt(pid: number): void {
    if (!this.mount || this.home.has(pid)) return;
    const g = cgroupOfPid(pid, this.mount);
    if (g) this.home.set(pid, g);
  }

  /** a pid no longer the monitor's (a sensor replaced by its restart) */
  forget(pid: number): void {
    this.home.delete(pid);
    this.held.delete(pid);
  }

  /**
   * One poll of the monitor's pids: frees what is held, and returns each pid's verdict and
   * the answers for episodes that ended in this pass (one per kind, pids merged).
   */
  pass(pids: number[], deep: boolean): { verdicts: Map<number, Verdict>; answers: ResumeAnswer[] } {
    const verdicts = new Map<number, Verdict>();
    this.frozenIn = new Map();
    const done: Episode[] = [];
    const donePids: number[][] = [];
    for (const pid of pids) {
      const v = this.check(pid, deep);
      verdicts.set(pid, v.verdict);
      if (v.ended) {
        done.push(v.ended);
        donePids.push([pid]);
      }
    }
    const byWhat = new Map<HeldHow, ResumeAnswer>();
    const now = performance.now();
    done.forEach((e, i) => {
      const a = byWhat.get(e.what);
      const ms = Math.round((now - e.since) * 10) / 10;
      if (!a) byWhat.set(e.what, { resumed: true, what: e.what, pids: donePids[i] ?? [], tracer: e.tracer, group: e.group, home: e.home, latency_ms: ms });
      else {
        a.pids.push(...(donePids[i] ?? []));
        a.tracer ??= e.tracer;
        a.group ??= e.group;
        a.home ??= e.home;
        a.latency_ms = Math.max(a.latency_ms, ms);
      }
    });
    if (this.held.size === 0) this.killed.clear();
    return { verdicts, answers: [...byWhat.values()] };
  }

  private check(pid: number, deep: boolean): { verdict: Verdict; ended?: Episode } {
    const st = statusOf(`/proc/${pid}`);
    if (!st) {
      this.held.delete(pid);
      return { verdict: 'gone' };
    }
    // a pid already held is scanned fully until freed: its tracer may sit on any thread
    const full = deep || this.held.has(pid);
    const tracer = st.tracer || (full ? threadTracer(pid) : 0);
    const group = this.mount ? cgroupOfPid(pid, this.mount) : null;
    const home = this.home.get(pid) ?? null;
    const moved = group !== null && home !== null && group !== home;
    const frozen = group !== null && this.frozen(group);
    const stopped = st.state === 'T' || st.state === 't';
    if (!tracer && !moved && !frozen && !stopped) {
      const e = this.held.get(pid);
      this.held.delete(pid);
      return e ? { verdict: 'resumed', ended: e } : { verdict: 'running' };
    }
    let e = this.held.get(pid);
    if (!e) {
      e = { what: 'stopped', since: performance.now(), tracer: null, group: null, home: null };
      this.held.set(pid, e);
    }
    // the most telling kind wins: a tracer or a cgroup is what held it, the stop its symptom
    if (moved || frozen) Object.assign(e, { what: e.what === 'traced' ? 'traced' : 'frozen-cgroup', group, home: moved ? home : null });
    if (tracer) {
      e.what = 'traced';
      const who = this.killTracer(tracer);
      e.tracer ??= who;
    }
    if (moved || frozen) this.unfreeze(pid, group, home, moved);
    // SIGCONT ends a stop (and a trace stop once the tracer is gone); harmless when running
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone meanwhile: the next pass says so
    }
    // SIGCONT and a thaw act at once: say so in this pass rather than the next
    const again = statusOf(`/proc/${pid}`);
    const still = again === null || (full ? threadTracer(pid) : again.tracer) > 0 || again.state === 'T' || again.state === 't' || (this.mount !== null && this.stillFrozen(pid, home));
    if (!still) {
      this.held.delete(pid);
      return { verdict: 'resumed', ended: e };
    }
    return { verdict: performance.now() - e.since > STUCK_MS ? 'stuck' : 'held' };
  }

  /**
   * cgroup.events says frozen (its own freeze or an ancestor's), or cgroup.freeze asks for it:
   * the group's `frozen` waits for its every task, and one that never stops would hide a
   * daemon already frozen. Two reads a poll, none for the root group (it cannot be frozen).
   */
  private frozen(group: string): boolean {
    if (group === this.mount) return false;
    let f = this.frozenIn.get(group);
    if (f === undefined) {
      f = readEvents(group).frozen === 1 || readText(join(group, 'cgroup.freeze')) === '1';
      this.frozenIn.set(group, f);
    }
    return f;
  }

  private stillFrozen(pid: number, home: string | null): boolean {
    const g = cgroupOfPid(pid, this.mount as string);
    // read anew: this pass's thaw changed it
    this.frozenIn.delete(g ?? '');
    if (home) this.frozenIn.delete(home);
    return g !== null && ((home !== null && g !== home) || this.frozen(g));
  }

  /**
   * Moves pid back to its own group (a task moved into a group that is not frozen thaws), and
   * thaws where it is. The group it was moved into is thawed only once the move left it empty:
   * one that still holds processes may be a subject's, frozen by the daemon on purpose.
   */
  private unfreeze(pid: number, group: string | null, home: string | null, moved: boolean): void {
    if (moved && home && !this.move(home, pid)) {
      // its group is gone (removed once emptied): the root group always takes it
      const root = this.mount as string;
      if (this.move(root, pid)) this.home.set(pid, root);
    }
    if (moved && group && readText(join(group, 'cgroup.procs')) === '') this.thaw(group);
    const now = this.mount ? cgroupOfPid(pid, this.mount) : null;
    if (now) this.thaw(now);
  }

  private move(group: string, pid: number): boolean {
    try {
      movePid(group, pid);
      return true;
    } catch {
      return false;
    }
  }

  /** writes 0 to the freeze of `group` and of each ancestor that asks for one (a parent's freeze holds its children) */
  private thaw(group: string): void {
    const mount = this.mount as string;
    for (let g = group; isWithin(g, mount) && g !== mount; g = dirname(g)) {
      // never the subject's group: a freeze the daemon made there must hold
      if (this.subjectGroup !== null && g === this.subjectGroup) continue;
      if (readText(join(g, 'cgroup.freeze')) !== '1') continue;
      try {
        writeFileSync(join(g, 'cgroup.freeze'), '0');
      } catch {
        // removed meanwhile
      }
    }
  }

  /** names the tracer and kills it: a tracee is freed only when its tracer detaches or dies */
  private killTracer(tid: number): ResumeAnswer['tracer'] {
    const tgid = Number(/^Tgid:\s+(\d+)/m.exec(readText(`/proc/${tid}/status`) ?? '')?.[1] ?? tid);
    const who = { pid: tgid, comm: readText(`/proc/${tid}/comm`) ?? '?', cgroup: this.mount ? cgroupOfPid(tid, this.mount) : null };
    if (this.spare.includes(tgid) || this.spare.includes(tid) || this.killed.has(tgid)) return who;
    try {
      process.kill(tgid, 'SIGKILL');
      this.killed.add(tgid);
    } catch {
      // gone already
    }
    return who;
  }
}
