// The watchdog frees a held monitor where `redline exec` here cannot put one: a daemon whose own
// group (not the root group, as on this host) is frozen, and a daemon held by ptrace on a worker
// thread (the main thread's status shows no tracer). A python3 process with a second thread
// stands in for the daemon; the watchdog is the real one, its answers read by the real Deadman,
// and it writes no log (the daemon is alive: one writer).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cgroupOfPid, createFreshGroup, findCgroupV2Mount, movePid } from '../../daemon/cgroup.js';
import { Deadman, type Resumed } from '../../daemon/deadman.js';
import { cgroupSkipReason, sweepGroup } from '../helpers/host.js';
import { tempDir } from '../helpers/redline.js';

const skip = cgroupSkipReason();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function answer(got: Resumed[], what: string, ms: number): Promise<Resumed | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const r = got.find((x) => x.answer.what === what);
    if (r) return r;
    await sleep(5);
  }
  return undefined;
}

describe('the watchdog frees a held monitor (a stand-in daemon)', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const home = join(findCgroupV2Mount() ?? '/nonexistent', 'redline', `test-deadman-home-${process.pid}`);
  const log = join(tmp.dir, 'never.ndjson');
  const got: Resumed[] = [];
  const children: ChildProcess[] = [];
  let standIn: ChildProcess;
  let watchdog: Deadman;

  before(async () => {
    assert.equal(createFreshGroup(home), null, 'a group of its own for the stand-in');
    standIn = spawn('python3', ['-c', 'import threading, time\nthreading.Thread(target=time.sleep, args=(120,)).start()\ntime.sleep(120)'], { stdio: 'ignore' });
    children.push(standIn);
    movePid(home, standIn.pid as number);
    // the second thread is up before the watchdog looks
    for (let i = 0; i < 200 && readdirSync(`/proc/${standIn.pid}/task`).length < 2; i++) await sleep(5);
    watchdog = await Deadman.start({ daemonPid: standIn.pid as number, group: null, log, freeze: false, exec: false, graceMs: 0, pollMs: 50, heartbeatWindowMs: 0 });
    watchdog.on('resumed', (r) => got.push(r));
  });
  after(async () => {
    watchdog?.bye();
    for (const c of children) c.kill('SIGKILL');
    try {
      writeFileSync(join(home, 'cgroup.freeze'), '0');
    } catch {
      // never made
    }
    await sweepGroup(home);
    tmp.cleanup();
  });

  test('its own group frozen: thawed within half a second, and the daemon told', async () => {
    const t0 = performance.now();
    writeFileSync(join(home, 'cgroup.freeze'), '1');
    const r = await answer(got, 'frozen-cgroup', 2000);
    assert.ok(r, 'an answer');
    assert.ok(performance.now() - t0 < 500, `thawed after ${(performance.now() - t0).toFixed(1)} ms`);
    assert.equal(readFileSync(join(home, 'cgroup.freeze'), 'utf8').trim(), '0');
    assert.deepEqual(r.answer.pids, [standIn.pid]);
    assert.equal(r.answer.group, home);
    assert.match(r.summary, new RegExp(`the monitor \\(pid ${standIn.pid}\\) was frozen or moved in cgroup ${home}; the watchdog thawed it`));
    assert.equal(r.cause, 'the monitor was frozen');
    assert.equal(cgroupOfPid(standIn.pid as number, findCgroupV2Mount() as string), home, 'still in its own group');
  });

  test('ptrace on a worker thread: the tracer is named and killed, the thread runs again', async () => {
    const tid = Number(readdirSync(`/proc/${standIn.pid}/task`).find((t) => Number(t) !== standIn.pid));
    const py = ['import ctypes, sys, time', 'libc = ctypes.CDLL(None, use_errno=True)', 'libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]', 'for req in (0x4206, 0x4207):', '    if libc.ptrace(req, int(sys.argv[1]), None, None) != 0: sys.exit("ptrace %#x: errno %d" % (req, ctypes.get_errno()))', 'time.sleep(60)'].join('\n');
    const tracer = spawn('python3', ['-c', py, String(tid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(tracer);
    let err = '';
    tracer.stderr?.on('data', (d) => (err += d));
    const r = await answer(got, 'traced', 3000);
    assert.ok(r, `an answer (tracer said: ${err})`);
    assert.equal(r.answer.tracer?.pid, tracer.pid, 'the tracer is named');
    assert.equal(r.answer.tracer?.comm, 'python3');
    await sleep(100);
    assert.equal(tracer.signalCode, 'SIGKILL', 'and killed');
    assert.match(readFileSync(`/proc/${standIn.pid}/task/${tid}/status`, 'utf8'), /TracerPid:\s+0\n/);
    assert.doesNotMatch(readFileSync(`/proc/${standIn.pid}/task/${tid}/status`, 'utf8'), /State:\s+[Tt]/, 'the thread runs again');
    assert.equal(standIn.exitCode === null && standIn.signalCode === null, true, 'the daemon is alive, never killed');
    assert.equal(existsSync(log), false, 'the watchdog wrote no log: the daemon lives');
  });
});
