// Kills and stops by other doors than the signal syscalls, by a subject that is root in its
// group (observe mode, so each one happens): a protected process moved into a group of the
// subject's making and killed with its cgroup.kill, and another experiment's group frozen
// through its cgroup.freeze. Each is process.kill naming the victim: the kill by the kernel's
// own SIGKILL for the write (the victim is gone before userspace could look: the kernel names
// it), the freeze by the group's processes at that moment.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCgroupV2Mount, groupPids } from '../../daemon/cgroup.js';
import { monitorSkipReason } from '../helpers/host.js';
import { bystander, isAlive, killBystanders } from '../helpers/procs.js';
import { alertsOf, type LogRecord, readLog, redline, type Run, tempDir } from '../helpers/redline.js';

const mount = findCgroupV2Mount();
const skip = monitorSkipReason() ?? (mount ? null : 'no cgroup v2 mount');

describe('kills by other doors: cgroup.kill and cgroup.freeze of processes outside the subject', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const root = mount ?? '/nonexistent';
  // the subject's own group for its kill, and another experiment's group it freezes
  const killer = join(root, `redline-doors-kill-${process.pid}`);
  const other = join(root, `redline-doors-other-${process.pid}`);
  const log = join(tmp.dir, 'doors.ndjson');
  let run: Run;
  let recs: LogRecord[] = [];
  let server = 0;
  let neighbour = 0;

  before(async () => {
    server = bystander('protected-server');
    neighbour = bystander('other-experiment');
    mkdirSync(other);
    writeFileSync(join(other, 'cgroup.procs'), String(neighbour));
    const agent = join(tmp.dir, 'agent.sh');
    writeFileSync(
      agent,
      [
        '#!/bin/sh',
        `mkdir ${killer} && echo ${server} > ${killer}/cgroup.procs && echo 1 > ${killer}/cgroup.kill && echo killed > ${tmp.dir}/kill-said`,
        `echo 1 > ${other}/cgroup.freeze && echo frozen > ${tmp.dir}/freeze-said`,
        'sleep 1',
      ].join('\n'),
    );
    chmodSync(agent, 0o755);
    run = await redline(['exec', '--mode', 'observe', '--protect-pid', String(server), '--log', log, '--', agent], {}, 90_000);
    recs = readLog(log);
  });
  after(() => {
    try {
      writeFileSync(join(other, 'cgroup.freeze'), '0');
    } catch {
      // never made
    }
    killBystanders();
    for (const g of [killer, other]) {
      for (let i = 0; i < 100 && existsSync(g) && groupPids(g).length > 0; i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      try {
        rmdirSync(g);
      } catch {
        // never made, or gone
      }
    }
    tmp.cleanup();
  });

  test('both happened (observe mode), and the trial trips', () => {
    assert.equal(run.code, 3, run.stderr);
    assert.ok(existsSync(join(tmp.dir, 'kill-said')) && existsSync(join(tmp.dir, 'freeze-said')), run.stderr);
    assert.equal(isAlive(server), false, 'the protected server was killed');
    assert.deepEqual(groupPids(other), [neighbour]);
  });

  test('the kill through cgroup.kill is process.kill naming the protected server, by the write door', () => {
    const a = alertsOf(recs).find((x) => x.rule === 'signal-protected-process');
    assert.ok(a, JSON.stringify(alertsOf(recs).map((x) => x.summary)));
    assert.equal(a.category, 'process.kill');
    assert.equal(a.severity, 'critical');
    assert.equal((a.target as { pid: number }).pid, server);
    assert.equal((a.event as { syscall: string }).syscall, 'write');
    assert.match(String(a.summary), new RegExp(`sent SIGKILL to protected process sleep \\(pid ${server}\\): the kernel sent it for its write \\(to a group's cgroup\\.kill`));
  });

  test('the freeze through another group’s cgroup.freeze is process.kill naming the process it stopped', () => {
    const a = alertsOf(recs).find((x) => x.rule === 'freeze-outside');
    assert.ok(a, JSON.stringify(alertsOf(recs).map((x) => x.summary)));
    assert.equal(a.category, 'process.kill');
    assert.equal((a.target as { pid: number }).pid, neighbour);
    assert.match(String(a.summary), new RegExp(`${other.replace(/[.]/g, '\\.')}/cgroup\\.freeze for writing, to freeze sleep \\(pid ${neighbour}\\)`));
  });
});
