// The subject's listening ports: each one is logged (`port.listen` / `port.close` event
// records), goes through the rules, and — when a replica holds it — is probed a few times
// while the server starts up, until it answers like an inference API or the tries run out.
import { readlinkSync } from 'node:fs';
import type { ListenCloseEvent, ListenEvent } from './events.js';
import { type ProbeAnswer, probe, probeInNetns } from './actions/probe.js';
import type { Pipeline } from './pipeline.js';
import { ancestorsOf, type ProcessTable } from './process-table.js';
import { PortPoller } from './sensors/ports/poll.js';
import { isLoopback } from './sensors/ports/parse-net.js';
import { listeningSockets } from './sensors/ports/resolve.js';

// a server listens before it has loaded its model: probe again while it starts up
const PROBE_AFTER_MS = [150, 1000, 3000];
const WILDCARD = ['0.0.0.0', '::'];

function ownNetns(): string | null {
  try {
    return readlinkSync('/proc/self/ns/net');
  } catch {
    return null;
  }
}

export interface ListenerOptions {
  table: ProcessTable;
  pipeline: Pipeline;
  /** the subject's processes now (for the /proc/net poll) */
  pids: () => number[];
  /** settle whether the process holds the weights before judging its listen */
  checkWeights: (pid: number) => void;
  probeTimeoutMs: number;
  pollIntervalMs: number;
}

export class Listeners {
  readonly poller: PortPoller;
  private readonly netns = ownNetns();
  private stopped = false;

  constructor(private readonly o: ListenerOptions) {
    this.poller = new PortPoller({ pids: o.pids, intervalMs: o.pollIntervalMs });
    this.poller.on('event', (ev) => (ev.type === 'listen' ? this.listened(ev) : this.closed(ev)));
  }

  start(): void {
    this.poller.start();
  }

  async stop(): Promise<void> {
    // a last look, so the log has the close of every port that closed with the subject
    await this.poller.tick();
    this.stopped = true;
    this.poller.stop();
  }

  /** a listen() or UDP bind() from eBPF, its address read in the kernel */
  fromSensor(ev: ListenEvent): void {
    this.poller.claim(ev);
    this.listened(ev);
  }

  /** a process just found to be a replica: the ports it already listens on count from now */
  becameReplica(pid: number, comm: string | undefined): void {
    for (const { fd, socket: s } of listeningSockets(pid)) {
      this.judge({ type: 'listen', time: Date.now(), pid, comm, fd, seen_by: 'poll', proto: s.proto, addr: s.localAddr, port: s.localPort, inode: s.inode, loopback: isLoopback(s.localAddr) });
    }
  }

  private listened(ev: ListenEvent): void {
    this.o.pipeline.record({ kind: 'event', type: 'port.listen', pid: ev.pid, comm: ev.comm ?? this.o.table.get(ev.pid)?.comm, proto: ev.proto, addr: ev.addr, port: ev.port, inode: ev.inode, seen_by: ev.seen_by });
    // a server maps its weights and listens within milliseconds: settle which it is first
    this.o.checkWeights(ev.pid);
    this.judge(ev);
  }

  private judge(ev: ListenEvent): void {
    this.o.pipeline.handle(ev);
    this.probeIfReplica(ev);
  }

  private closed(ev: ListenCloseEvent): void {
    this.o.pipeline.record({ kind: 'event', type: 'port.close', pid: ev.pid, comm: ev.comm, proto: ev.proto, addr: ev.addr, port: ev.port, inode: ev.inode });
    this.o.pipeline.handle(ev);
  }

  /**
   * A replica's TCP port reachable on loopback is probed, from inside its network namespace
   * when that is not the daemon's. Every answer is logged and goes through the rules.
   */
  private probeIfReplica(ev: ListenEvent): void {
    const p = this.o.table.get(ev.pid);
    const replica = p !== undefined && (p.replica || ancestorsOf(p).some((a) => a.replica));
    if (!replica || !ev.port || !ev.proto?.startsWith('tcp')) return;
    if (ev.addr !== undefined && !ev.loopback && !WILDCARD.includes(ev.addr)) return;
    const { pid, port } = ev;
    let inNetns = false;
    try {
      inNetns = this.netns !== null && readlinkSync(`/proc/${pid}/ns/net`) !== this.netns;
    } catch {
      return; // gone already
    }
    const attempt = (i: number): void => {
      if (i >= PROBE_AFTER_MS.length || this.stopped) return;
      setTimeout(() => {
        if (this.stopped) return;
        const asked = inNetns ? probeInNetns(pid, port, this.o.probeTimeoutMs) : probe(port, this.o.probeTimeoutMs);
        void asked.then((answers) => {
          if (this.stopped) return;
          this.answered(pid, p?.comm, port, inNetns, answers);
          if (!answers.some((a) => a.inference)) attempt(i + 1);
        });
      }, PROBE_AFTER_MS[i]).unref();
    };
    attempt(0);
  }

  private answered(pid: number, comm: string | undefined, port: number, inNetns: boolean, answers: ProbeAnswer[]): void {
    for (const a of answers) {
      this.o.pipeline.record({ kind: 'event', type: 'probe', pid, port, netns: inNetns || undefined, ...a });
      this.o.pipeline.handle({ type: 'probe', time: Date.now(), pid, comm, port, path: a.path, status: a.status ?? 0, answered: a.status !== null, inference: a.inference, excerpt: a.excerpt });
    }
  }
}
