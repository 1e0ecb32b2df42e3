// The subject's command lines, kept after its processes exit: a replica that loads the weights
// outside the subject (a host service, a remote shell) is tied to the trial by one that names it.
import type { WeightsLoadEvent } from './events.js';
import { namesCommand, type ProcInfo, telling } from './process.js';

/** subject command lines kept for tying a replica outside it to the trial */
const MAX_COMMANDS = 256;

export class SubjectCommands {
  /** newest last (bounded) */
  private readonly commands: { pid: number; text: string }[] = [];

  /** a subject's command line, kept after it exits: a replica outside may be running it */
  remember(p: ProcInfo): void {
    this.commands.push({ pid: p.pid, text: p.args.join(' ') });
    if (this.commands.length > MAX_COMMANDS) this.commands.shift();
  }

  /**
   * What ties a replica outside the subject to the trial: the job file the sensor found, a
   * subject command naming one of its telling arguments (`systemd-run …`, `ssh host '…'`,
   * `docker run …`), or only the time (it loaded the weights while the trial ran).
   */
  tieOf(ev: WeightsLoadEvent, p: ProcInfo): Pick<WeightsLoadEvent, 'tie' | 'tie_pid'> {
    if (ev.job_file) return { tie: 'job_file' };
    const args = telling(p.args);
    for (let i = this.commands.length - 1; i >= 0; i--) {
      const c = this.commands[i] as { pid: number; text: string };
      if (c.pid !== p.pid && namesCommand(c.text, args)) return { tie: 'command', tie_pid: c.pid };
    }
    return { tie: 'time' };
  }
}
