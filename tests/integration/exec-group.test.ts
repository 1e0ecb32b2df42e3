// A trial's group is fresh: `exec --trial NAME` whose group is left over from an earlier run.
// Holding processes (say, a subject left frozen when its monitor died): refused with exit 2,
// and the leftover's processes and freeze are untouched — they are evidence. Empty but left
// frozen: made anew, and the new subject runs instead of starting frozen forever. `redline
// doctor` lists what is left under redline/.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { findCgroupV2Mount, groupPids, readEvents } from '../../daemon/cgroup.js';
import { cgroupSkipReason, monitorSkipReason, sweepGroup } from '../helpers/host.js';
import { readLog, redline, tempDir } from '../helpers/redline.js';

const skip = cgroupSkipReason();

describe('a trial group left over from an earlier run', { skip: skip ?? false }, () => {
  const mount = findCgroupV2Mount() as string;
  const tmp = tempDir();
  const groups: string[] = [];
  const children: ChildProcess[] = [];
  after(async () => {
    for (const g of groups) await sweepGroup(g);
    for (const c of children) c.kill('SIGKILL');
    tmp.cleanup();
  });

  const leftover = (name: string): string => {
    const g = join(mount, 'redline', name);
    groups.push(g);
    mkdirSync(g, { recursive: true });
    return g;
  };

  test('one still holding a frozen process: refused with exit 2, and the process stays frozen in it', async () => {
    const trial = `leftover-busy-${process.pid}`;
    const g = leftover(trial);
    const held = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(held);
    writeFileSync(join(g, 'cgroup.procs'), String(held.pid));
    writeFileSync(join(g, 'cgroup.freeze'), '1');
    const log = join(tmp.dir, 'busy.ndjson');
    const r = await redline(['exec', '--trial', trial, '--log', log, '--socket', 'off', '--', 'true'], {}, 30_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${trial}.*already holds processes \\(${held.pid}\\)`));
    assert.deepEqual(groupPids(g), [held.pid], 'the leftover process is still in its group');
    assert.equal(readEvents(g).frozen, 1, 'and still frozen');
    assert.equal(existsSync(log), false, 'no trial was started');
    const doctor = await redline(['doctor'], {}, 30_000);
    assert.match(doctor.stdout, new RegExp(`no {3}redline groups .*${trial} \\(1 process, frozen\\)`), 'doctor lists it');
  });

  test('an empty one left frozen: made anew, and the subject runs to its end', { skip: monitorSkipReason() ?? false }, async () => {
    const trial = `leftover-empty-${process.pid}`;
    const g = leftover(trial);
    writeFileSync(join(g, 'cgroup.freeze'), '1');
    const log = join(tmp.dir, 'empty.ndjson');
    const r = await redline(['exec', '--trial', trial, '--log', log, '--socket', 'off', '--', 'sh', '-c', 'echo ran'], {}, 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ran$/m);
    const end = readLog(log).find((x) => x.kind === 'trial' && x.phase === 'end');
    assert.equal(end?.subject_exit, 0);
    assert.equal(existsSync(g), false, 'the group is removed at the end of the trial');
  });
});
