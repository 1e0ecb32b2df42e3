// `redline run`: the long-running daemon. The subject is an existing cgroup, a pid and its
// descendants, or a uid. Stops cleanly on SIGTERM/SIGINT from anyone but the subject.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cgroupOfPid, createFreshGroup, findCgroupV2Mount, groupPids, isV2Group, movePid, removeGroup } from '../cgroup.js';
import type { ResolvedConfig } from '../config/options.js';
import type { ConfigFlags } from '../config/load.js';
import { collectHostFacts } from '../host-facts.js';
import { sdNotify, startWatchdog } from '../notify.js';
import { listPids, readStat } from '../sensors/proc/read.js';
import { describeSubject, type Subject } from '../subject.js';
import { ancestorOffsets } from '../sensors/ebpf/btf.js';
import { parseTrialSpec, type TrialSpec } from '../trials/groups.js';
import { checkWatchable, setup, startMonitor, UsageError } from './setup.js';

/**
 * --subject-pid: redline moves that pid and every descendant into a group of its own, so the
 * in-kernel filter and the freeze work the same as for a cgroup. (Decision: moving is
 * preferred over following the tree in a bpftrace map, which cannot freeze atomically.)
 */
function adoptTree(root: number, mount: string): Adopted {
  if (!readStat(root)) throw new UsageError(`--subject-pid ${root}: no such process`);
  const origin = cgroupOfPid(root, mount) ?? mount;
  const group = join(mount, 'redline', `pid-${root}`);
  // the tree already in its group (a daemon before this one was lost, and its watchdog left
  // the group frozen): this daemon goes on watching it there
  if (groupPids(group).includes(root)) return { group, origin: mount };
  const taken = createFreshGroup(group);
  if (taken) throw new UsageError(`--subject-pid ${root}: ${taken}`);
  const moved = new Set<number>();
  // repeat until a pass finds no new descendant: forks may race the first passes
  for (let pass = 0; pass < 20; pass++) {
    const parents = new Map<number, number>();
    for (const pid of listPids()) {
      const st = readStat(pid);
      if (st) parents.set(pid, st.ppid);
    }
    const inTree = (pid: number): boolean => {
      for (let p: number | undefined = pid, depth = 0; p !== undefined && p > 0 && depth < 256; p = parents.get(p), depth++) if (p === root) return true;
      return false;
    };
    let fresh = 0;
    for (const pid of parents.keys()) {
      if (moved.has(pid) || !inTree(pid)) continue;
      try {
        movePid(group, pid);
        moved.add(pid);
        fresh++;
      } catch {
        // exited meanwhile
      }
    }
    if (fresh === 0) break;
  }
  return { group, origin };
}

/** the group redline made for --subject-pid, and where the tree was before */
interface Adopted {
  group: string;
  origin: string;
}

/**
 * A clean stop gives an adopted tree back: every process still in the group returns to the
 * group the tree came from, and the group is removed. A subject frozen on a trip stays frozen
 * in it, on purpose: the evidence is kept for whoever ends it.
 */
function releaseTree(a: Adopted, frozen: boolean): { released: number[]; group_removed: boolean; reason?: string } {
  if (frozen && groupPids(a.group).length > 0) return { released: [], group_removed: false, reason: 'the subject is frozen: left in its group with its evidence' };
  const to = existsSync(join(a.origin, 'cgroup.procs')) ? a.origin : (findCgroupV2Mount() ?? a.origin);
  const released: number[] = [];
  // repeat until empty: a process may fork while the others are moved
  for (let pass = 0; pass < 20; pass++) {
    const left = groupPids(a.group);
    if (left.length === 0) break;
    for (const pid of left) {
      try {
        movePid(to, pid);
        released.push(pid);
      } catch {
        // exited meanwhile
      }
    }
  }
  return { released, group_removed: removeGroup(a.group) };
}

export function resolveSubject(config: ResolvedConfig): { subject: Subject; adopted?: Adopted; trials?: TrialSpec } {
  const mount = findCgroupV2Mount();
  if (config.subjectUid !== undefined) return { subject: { kind: 'uid', uid: config.subjectUid } };
  if (!mount) throw new UsageError('--subject-cgroup, --subject-pid and --trials-under need cgroup v2 (no cgroup2 mount found); use --subject-uid');
  if (config.trialsUnder !== undefined) {
    const spec = parseTrialSpec(config.trialsUnder, mount);
    if (typeof spec === 'string') throw new UsageError(spec);
    if (!existsSync(spec.parent) || !isV2Group(spec.parent)) throw new UsageError(`--trials-under ${config.trialsUnder}: ${spec.parent} is not a cgroup v2 group under ${mount}`);
    // one program for every sandbox: the kernel must test "below the parent" (btf.ts)
    const offsets = ancestorOffsets();
    if (typeof offsets === 'string') throw new UsageError(`--trials-under needs the kernel's BTF to filter below a group: ${offsets}`);
    return { subject: { kind: 'cgroup2', path: spec.parent, mount }, trials: spec };
  }
  if (config.subjectCgroup !== undefined) {
    const path = config.subjectCgroup.startsWith(mount) ? config.subjectCgroup : join(mount, config.subjectCgroup);
    if (!existsSync(path) || !isV2Group(path)) throw new UsageError(`--subject-cgroup ${config.subjectCgroup}: not a cgroup v2 group under ${mount}`);
    return { subject: { kind: 'cgroup2', path, mount } };
  }
  if (config.subjectPid !== undefined) {
    const adopted = adoptTree(config.subjectPid, mount);
    return { subject: { kind: 'cgroup2', path: adopted.group, mount }, adopted };
  }
  throw new UsageError('run needs a subject: --subject-cgroup PATH, --subject-pid PID, --subject-uid UID or --trials-under CGROUP');
}

export async function runCommand(flags: ConfigFlags): Promise<number> {
  const { config, ruleset, ruleFiles, signing, sensor } = setup('run', flags);
  const { subject, adopted, trials } = resolveSubject(config);
  const logPath = resolve(config.log ?? '/var/log/redline/audit.ndjson');
  checkWatchable(config, logPath);
  const m = await startMonitor({ config, subject, logPath, ruleset, ruleFiles, sensor, ...(trials ? { trials } : {}), ...(signing ? { signing } : {}) });
  m.prioritize();
  // the host's facts, gathered off the hot path, in a record of their own
  void collectHostFacts().then((host) => {
    try {
      m.log.append({ kind: 'daemon', phase: 'host', host });
    } catch {
      // the daemon stopped first
    }
  });
  process.stderr.write(`redline: monitoring ${describeSubject(subject)} (${config.mode}), log ${logPath}\n`);
  m.pipeline.on('alert', (a: { severity: string; category: string; summary: string }) => process.stderr.write(`redline: [${a.severity}] ${a.category}: ${a.summary}\n`));
  // the daemon lives until told to stop, whatever its sensor is doing meanwhile
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await sdNotify('READY=1', `STATUS=monitoring ${describeSubject(subject)} (${config.mode})`);
  // a sensor that stays down (restarting for good) is a daemon systemd should restart
  const stopWatchdog = startWatchdog(() => m.sensor.health().running);
  return new Promise((done) => {
    m.onSignals(
      (sig) => {
        void sdNotify('STOPPING=1');
        stopWatchdog();
        if (adopted) m.log.append({ kind: 'daemon', phase: 'release', group: adopted.group, to: adopted.origin, ...releaseTree(adopted, m.pipeline.frozen) });
        void m.stop(`${sig} received`).then(() => {
          clearInterval(keepAlive);
          done(0);
        });
      },
      () => {
        const ok = m.reloadRules() === true;
        process.stderr.write(`redline: SIGHUP: ${ok ? 'rules reloaded' : 'reload failed, old rules kept'}\n`);
      },
    );
  });
}
