// The dead-man's switch and a daemon that is alive but hung: the watchdog hears a heartbeat
// from the daemon's event loop, and a loop that stops turning for longer than the window is a
// lost monitor, as a killed or stopped one is. Here this test process is the daemon whose
// loop hangs (a synchronous wait blocks it, as a stuck read would); a `sleep` stands in for
// the daemon's pid the watchdog kills so that the chain has one writer. Real watchdog
// process, real cgroup, real subject, real log.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createFreshGroup, findCgroupV2Mount, movePid, readEvents } from '../../daemon/cgroup.js';
import { Deadman } from '../../daemon/deadman.js';
import { cgroupSkipReason, sweepGroup } from '../helpers/host.js';
import { readLog, redline, tempDir } from '../helpers/redline.js';

const skip = cgroupSkipReason();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WINDOW_MS = 500;

/** blocks this process's event loop for `ms`: no timer, no heartbeat, no I/O callback runs */
function hang(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('the watchdog’s heartbeat', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const group = join(findCgroupV2Mount() ?? '/nonexistent', 'redline', `test-heartbeat-${process.pid}`);
  const log = join(tmp.dir, 'heartbeat.ndjson');
  const progress = join(tmp.dir, 'progress');
  let standIn: ChildProcess;
  let agent: ChildProcess;
  let watchdog: Deadman;

  before(async () => {
    assert.ok(createFreshGroup(group) === null, 'a fresh group for the subject');
    standIn = spawn('sleep', ['120'], { stdio: 'ignore' });
    agent = spawn('sh', ['-c', `i=0; while :; do i=$((i+1)); echo $i > ${progress}; sleep 0.02; done`], { stdio: 'ignore' });
    movePid(group, agent.pid as number);
    // observe mode at start: a loss is recorded, nothing frozen, until the mode is switched
    watchdog = await Deadman.start({ daemonPid: standIn.pid as number, group, log, freeze: false, exec: false, graceMs: 0, pollMs: 100, heartbeatWindowMs: WINDOW_MS, trial: 't-heartbeat' });
  });
  after(async () => {
    watchdog?.bye();
    standIn?.kill('SIGKILL');
    await sweepGroup(group);
    tmp.cleanup();
  });

  test('a loop busy for less than the window is not a loss', async () => {
    hang(WINDOW_MS * 0.6);
    await sleep(WINDOW_MS * 1.5);
    assert.equal(readEvents(group).frozen, 0, 'the subject runs on');
    assert.equal(existsSync(log), false, 'nothing was written');
    assert.equal(standIn.exitCode === null && standIn.signalCode === null, true, 'the daemon is left alone');
  });

  test('switched to enforce, then hung past the window: the subject is frozen, the hung daemon killed, the loss logged in a chain that verifies', async () => {
    watchdog.freezeOnLoss(true);
    // the switch reaches the watchdog before the loop hangs
    await sleep(100);
    const t0 = Date.now();
    hang(WINDOW_MS * 3);
    const frozen = readEvents(group).frozen;
    const seen = readFileSync(progress, 'utf8');
    await sleep(400);
    assert.equal(frozen, 1, 'frozen while the daemon was hung');
    assert.equal(readFileSync(progress, 'utf8'), seen, 'the agent did not act again');
    assert.equal(standIn.signalCode, 'SIGKILL', 'the hung daemon was killed: the chain has one writer');
    const recs = readLog(log);
    const lost = recs.find((r) => r.kind === 'daemon' && r.phase === 'lost');
    assert.ok(lost, 'the loss is recorded');
    assert.match(String(lost.reason), /no heartbeat for \d+ ms \(window 500 ms\)/);
    assert.equal(lost.subject_frozen, true);
    assert.ok((lost.time as number) - t0 < WINDOW_MS * 3, 'noticed before the hang ended');
    assert.ok(recs.some((r) => r.kind === 'alert' && r.category === 'monitor.degraded' && r.severity === 'critical'));
    const audit = await redline(['audit', log]);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  });
});
