// The orphan check: the kernel reports a process's exit but not that its children were
// handed to another parent. Shortly after a parent exits, its live children are read
// from /proc; each one whose parent changed is a `reparent` event.
import { EventEmitter } from 'node:events';
import type { ReparentEvent } from '../events.js';
import type { ProcInfo } from '../process.js';
import type { Sensor, SensorHealth } from '../sensors/sensor.js';
import { readStat } from '../sensors/proc/read.js';

// after a parent exits, the kernel reparents its children within microseconds; a daemonizing
// child calls setsid() as its parent exits, and its session decides the rule: a little longer
const REPARENT_CHECK_MS = 50;

export class OrphanCheck extends EventEmitter<{ event: [ReparentEvent] }> implements Sensor {
  readonly name = 'orphans';
  private found = 0;

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  ownPids(): number[] {
    return [];
  }

  health(): SensorHealth {
    return { name: this.name, running: true, restarts: 0, lost: 0, events: this.found };
  }

  /** `parent` exited: its children still alive now are looked at once the kernel has moved them */
  exited(parent: ProcInfo): void {
    const kids = [...parent.children].filter((c) => c.alive);
    if (kids.length === 0) return;
    setTimeout(() => {
      for (const c of kids) {
        const st = readStat(c.pid);
        if (!st || !c.alive || st.starttime !== c.start || st.ppid === parent.pid) continue;
        this.found++;
        this.emit('event', { type: 'reparent', time: Date.now(), pid: c.pid, comm: c.comm, old_ppid: parent.pid, new_ppid: st.ppid, sid: st.sid });
      }
    }, REPARENT_CHECK_MS).unref();
  }
}
