// The freeze fallbacks on real processes: the v1 freezer, and repeated SIGSTOP for a uid
// subject that keeps forking (until a pass finds no new pid).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { freeze, thaw } from '../../daemon/actions/freeze.js';
import { kill } from '../../daemon/actions/kill.js';
import { findFreezerV1Mount } from '../../daemon/cgroup.js';
import { readStat } from '../../daemon/sensors/proc/read.js';
import { type Subject, subjectPids } from '../../daemon/subject.js';

const root = process.getuid?.() === 0;
const v1 = findFreezerV1Mount();

describe('v1 freezer', { skip: !root ? 'needs root' : !v1 ? 'no v1 freezer hierarchy mounted on this host' : false }, () => {
  const path = join(v1 ?? '/nonexistent', `redline-test-${process.pid}`);
  const subject: Subject = { kind: 'freezer1', path, mount: v1 ?? '' };
  let pid = 0;
  after(() => {
    try {
      writeFileSync(join(path, 'freezer.state'), 'THAWED');
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(path);
        break;
      } catch {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  });

  test('freeze reaches FROZEN, thaw lets it run again, kill empties the group', async () => {
    mkdirSync(path, { recursive: true });
    const c = spawn('/bin/sh', ['-c', `echo $$ > ${path}/cgroup.procs; exec sleep 600`], { stdio: 'ignore' });
    pid = c.pid as number;
    while (!readFileSync(join(path, 'cgroup.procs'), 'utf8').trim()) await new Promise((r) => setTimeout(r, 10));
    const f = await freeze(subject);
    assert.equal(f.ok, true, f.error);
    assert.equal(f.method, 'freezer.state');
    assert.equal(readFileSync(join(path, 'freezer.state'), 'utf8').trim(), 'FROZEN');
    const t = await thaw(subject);
    assert.equal(t.ok, true);
    assert.equal(readFileSync(join(path, 'freezer.state'), 'utf8').trim(), 'THAWED');
    const k = await kill(subject);
    assert.equal(k.ok, true, k.error);
    assert.equal(subjectPids(subject).length, 0);
  });
});

describe('repeated SIGSTOP (uid subject)', { skip: !root ? 'needs root' : false }, () => {
  const uid = 64_999;
  const subject: Subject = { kind: 'uid', uid };
  after(async () => {
    await kill(subject);
  });

  test('a subject that keeps forking is stopped completely, then killed', async () => {
    // forks a short-lived sleep every few milliseconds, forever
    spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '/bin/sh', '-c', 'while :; do sleep 5 & done'], { stdio: 'ignore', detached: true });
    while (subjectPids(subject).length < 20) await new Promise((r) => setTimeout(r, 10));
    const f = await freeze(subject);
    assert.equal(f.ok, true, f.error);
    assert.equal(f.method, 'sigstop');
    // freeze waits for each to be really stopped, not only to have its SIGSTOP queued
    assert.equal(f.detail?.pending, 0);
    const pids = subjectPids(subject);
    for (const pid of pids) {
      const st = readStat(pid)?.state;
      if (st !== undefined) assert.match(st, /[TtZ]/, `pid ${pid} is ${st}`);
    }
    assert.equal(subjectPids(subject).length, pids.length, 'no new process appeared while stopped');
    const k = await kill(subject);
    assert.equal(k.ok, true, k.error);
    assert.equal(subjectPids(subject).length, 0);
  });

  test('a zombie in the subject (exited, never reaped) does not hold the freeze up', async () => {
    // the shell forks a child that exits at once, then becomes a sleep that never reaps it
    spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '/bin/sh', '-c', 'true & exec sleep 60'], { stdio: 'ignore', detached: true });
    const zombie = async () => subjectPids(subject).some((pid) => readStat(pid)?.state === 'Z');
    for (let i = 0; i < 200 && !(await zombie()); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(await zombie(), 'the zombie appeared');
    const f = await freeze(subject);
    assert.equal(f.ok, true, f.error);
    const sleeper = subjectPids(subject).find((pid) => readStat(pid)?.state !== 'Z');
    assert.ok(sleeper !== undefined);
    await new Promise((r) => setTimeout(r, 100));
    assert.match(readStat(sleeper)?.state ?? '', /[Tt]/);
    const k = await kill(subject);
    assert.equal(k.ok, true, k.error);
  });
});
