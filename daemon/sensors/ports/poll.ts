// The ports sensor, a /proc/net poll: listeners eBPF cannot report — ones that existed
// before redline started, ones whose listen() was missed — and every listener's close. Each
// tick reads the socket tables of each network namespace the subject's processes live in;
// only a listening inode not seen before costs a walk of the subject's fds to find its owner.
import { EventEmitter } from 'node:events';
import { readlinkSync } from 'node:fs';
import type { ListenCloseEvent, ListenEvent } from '../../events.js';
import type { Sensor, SensorHealth } from '../sensor.js';
import { isLoopback, type NetSocket } from './parse-net.js';
import { isListening, listeningSockets, netSocketsAsync, socketInodes } from './resolve.js';

export interface PortPollerOptions {
  /** the subject's processes now */
  pids: () => number[];
  intervalMs: number;
}

interface Held {
  pid: number;
  comm?: string;
  socket: NetSocket;
  /** its network namespace (null: not known, its owner gone) */
  netns: string | null;
}

/**
 * Network namespaces without a subject listener read in one pass, at most: with many
 * sandboxes (each its own namespace) the others are read in turn, each every
 * ceil(n / this) passes. eBPF reports each listen at once; the poll is its backstop.
 * (bench/trials.ts: reading 50 namespaces every second cost the daemon 22 % of a core.)
 */
const IDLE_NETNS_PER_PASS = 8;

function netnsOf(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

export class PortPoller extends EventEmitter<{ event: [ListenEvent | ListenCloseEvent] }> implements Sensor {
  readonly name = 'ports';
  /** listening sockets of subject processes, by inode: reported, and to be closed */
  private readonly held = new Map<number, Held>();
  /** when each network namespace was last read (ms): the idle ones are read stalest first */
  private readonly readAt = new Map<string, number>();
  /** listening sockets no subject process held when they were first seen (the host's sshd…) */
  private readonly foreign = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  ticks = 0;
  private reported = 0;

  constructor(private readonly o: PortPollerOptions) {
    super();
  }

  async start(): Promise<void> {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs);
    this.timer.unref();
  }

  /** a last look first, so the log has the close of every port that closed with the subject */
  async stop(): Promise<void> {
    if (this.timer) await this.tick();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  ownPids(): number[] {
    return [];
  }

  health(): SensorHealth {
    return { name: 'ports', running: this.timer !== null, restarts: 0, lost: 0, events: this.reported, detail: `/proc/net every ${this.o.intervalMs} ms; ${this.held.size} subject listeners` };
  }

  /** eBPF reported this listener: the poll need not find it, only see it close */
  claim(ev: ListenEvent): void {
    if (ev.inode === undefined || ev.port === undefined || ev.proto === undefined || ev.addr === undefined) return;
    const socket: NetSocket = { proto: ev.proto as NetSocket['proto'], localAddr: ev.addr, localPort: ev.port, remoteAddr: '', remotePort: 0, state: 0, uid: 0, inode: ev.inode };
    this.held.set(ev.inode, { pid: ev.pid, comm: ev.comm, socket, netns: netnsOf(ev.pid) });
    this.foreign.delete(ev.inode);
  }

  /** what `pid` listens on now, as listen events (a process just found to be a replica: its ports count from now) */
  listenersOf(pid: number, comm: string | undefined): ListenEvent[] {
    return listeningSockets(pid).map(({ fd, socket: s }) => ({
      type: 'listen', time: Date.now(), pid, comm, fd, seen_by: 'poll', proto: s.proto, addr: s.localAddr, port: s.localPort, inode: s.inode, loopback: isLoopback(s.localAddr),
    }));
  }

  private inFlight: Promise<void> | null = null;

  /** one pass (a pass still running is joined, not doubled); never rejects */
  tick(): Promise<void> {
    this.inFlight ??= this.pass()
      .catch(() => undefined)
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  /**
   * The namespaces read this pass: every one holding a subject listener (its close is due
   * now), every one never read, and of the rest the stalest, up to IDLE_NETNS_PER_PASS.
   */
  private netnsToRead(all: Map<string, number>): Map<string, number> {
    const now = Date.now();
    for (const ns of this.readAt.keys()) if (!all.has(ns)) this.readAt.delete(ns);
    const holding = new Set([...this.held.values()].map((h) => h.netns));
    const out = new Map<string, number>();
    const idle: [string, number][] = [];
    for (const [ns, pid] of all) {
      if (holding.has(ns) || !this.readAt.has(ns)) out.set(ns, pid);
      else idle.push([ns, pid]);
    }
    idle.sort((a, b) => (this.readAt.get(a[0]) ?? 0) - (this.readAt.get(b[0]) ?? 0));
    for (const [ns, pid] of idle.slice(0, IDLE_NETNS_PER_PASS)) out.set(ns, pid);
    for (const ns of out.keys()) this.readAt.set(ns, now);
    return out;
  }

  /** a process that vanishes mid-read is simply not there */
  private async pass(): Promise<void> {
    this.ticks++;
    const pids = this.o.pids();
    const oneOfEachNetns = new Map<string, number>();
    for (const pid of pids) {
      const ns = netnsOf(pid);
      if (ns !== null && !oneOfEachNetns.has(ns)) oneOfEachNetns.set(ns, pid);
    }
    const read = this.netnsToRead(oneOfEachNetns);
    const listening = new Map<number, NetSocket>();
    // only listeners known before the read can have closed (one claimed meanwhile is newer than it)
    const before = new Set(this.held.keys());
    const tables = await Promise.all([...read.values()].map((pid) => netSocketsAsync(pid)));
    for (const s of tables.flat()) if (isListening(s)) listening.set(s.inode, s);

    for (const [inode, h] of this.held) {
      if (listening.has(inode) || !before.has(inode)) continue;
      // a namespace not read this pass says nothing of its listeners (an owner gone: its namespace may be too)
      h.netns ??= netnsOf(h.pid);
      if (h.netns !== null && oneOfEachNetns.has(h.netns) && !read.has(h.netns)) continue;
      this.held.delete(inode);
      const s = h.socket;
      this.emit('event', { type: 'listen_close', time: Date.now(), pid: h.pid, comm: h.comm, proto: s.proto, addr: s.localAddr, port: s.localPort, inode });
    }
    for (const inode of this.foreign) if (!listening.has(inode)) this.foreign.delete(inode);

    const fresh = [...listening.keys()].filter((i) => !this.held.has(i) && !this.foreign.has(i));
    if (fresh.length === 0) return;
    const owners = new Map<number, { pid: number; fd: number }>();
    for (const pid of pids) {
      for (const [inode, fd] of socketInodes(pid)) if (!owners.has(inode)) owners.set(inode, { pid, fd });
    }
    for (const inode of fresh) {
      const s = listening.get(inode) as NetSocket;
      const owner = owners.get(inode);
      if (!owner) {
        this.foreign.add(inode);
        continue;
      }
      this.held.set(inode, { pid: owner.pid, socket: s, netns: netnsOf(owner.pid) });
      this.reported++;
      this.emit('event', {
        type: 'listen',
        time: Date.now(),
        pid: owner.pid,
        fd: owner.fd,
        seen_by: 'poll',
        proto: s.proto,
        addr: s.localAddr,
        port: s.localPort,
        inode,
        loopback: isLoopback(s.localAddr),
      });
    }
  }
}
