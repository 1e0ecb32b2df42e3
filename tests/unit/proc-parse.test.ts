import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseCgroupV1, parseCgroupV2, parseCmdline, parseStat, parseStatus } from '../../daemon/sensors/proc/parse-stat.js';

const fixture = (n: string) => readFileSync(new URL(`../fixtures/proc/${n}`, import.meta.url), 'utf8');

test('stat: pid, comm, state, ppid, pgid, sid and start time', () => {
  assert.deepEqual(parseStat(fixture('stat-cat.txt')), { pid: 4276, comm: 'cat', state: 'R', ppid: 4269, pgid: 4269, sid: 1095, starttime: 76122 });
});

test('stat: a comm with spaces and parentheses does not shift the fields', () => {
  const s = parseStat(fixture('stat-weird-comm.txt'));
  assert.equal(s?.comm, 'evil) name) x');
  assert.equal(s?.ppid, 1);
  assert.equal(s?.starttime, 123456);
});

test('stat: garbage gives null', () => {
  assert.equal(parseStat('not a stat line'), null);
  assert.equal(parseStat(''), null);
});

test('cmdline: NUL-separated, empty for zombies', () => {
  assert.deepEqual(parseCmdline('python3\0-m\0http.server\0'), ['python3', '-m', 'http.server']);
  assert.deepEqual(parseCmdline(''), []);
});

test('status: tgid, real uid and the pid in each pid namespace (host first)', () => {
  // a kernel without NSpid: the host's pid alone
  assert.deepEqual(parseStatus('Name:\tx\nTgid:\t77\nPid:\t78\nUid:\t1000\t1000\t1000\t1000\n'), { tgid: 77, uid: 1000, nspids: [77], stopPending: false });
  // a process inside a container's pid namespace: 3412 on the host, 2 inside
  assert.deepEqual(parseStatus('Name:\tsleep\nTgid:\t3412\nNgid:\t0\nPid:\t3412\nUid:\t0\t0\t0\t0\nNStgid:\t3412\t2\nNSpid:\t3412\t2\nNSpgid:\t3411\t1\n'), { tgid: 3412, uid: 0, nspids: [3412, 2], stopPending: false });
  // a SIGSTOP queued to the process (shared) or to its thread: bit 18 of the mask
  assert.equal(parseStatus('Tgid:\t9\nUid:\t0\t0\t0\t0\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000040000\n')?.stopPending, true);
  assert.equal(parseStatus('Tgid:\t9\nUid:\t0\t0\t0\t0\nSigPnd:\t0000000000040000\nShdPnd:\t0000000000000000\n')?.stopPending, true);
  // SIGCONT (18, bit 17) and SIGTERM (15) are not a stop
  assert.equal(parseStatus('Tgid:\t9\nUid:\t0\t0\t0\t0\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000024000\n')?.stopPending, false);
  assert.equal(parseStatus('Name: x'), null);
});

test('cgroup: v2 line and a v1 controller', () => {
  const text = '9:name=systemd:/\n6:freezer:/redline/t1\n4:memory:/x\n0::/redline/t1\n';
  assert.equal(parseCgroupV2(text), '/redline/t1');
  assert.equal(parseCgroupV1(text, 'freezer'), '/redline/t1');
  assert.equal(parseCgroupV2('6:freezer:/a\n'), null);
});
