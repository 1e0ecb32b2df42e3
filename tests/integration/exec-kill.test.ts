// process.kill through the real eBPF sensor: protected pid, own child, pkill -f, process
// groups and kill -1 (as an unprivileged subject, as in the supported deployment).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { bystander, isAlive, killBystanders } from '../helpers/procs.js';
import { alertsOf, type LogRecord, readLog, redline, type Run, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('process.kill', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let run: Run;
  let recs: LogRecord[];
  let protectedPid = 0;
  let otherPid = 0;
  const marker = `redline-victim-${process.pid}`;

  before(async () => {
    protectedPid = bystander();
    otherPid = bystander(marker);
    const script = join(tmp.dir, 'agent.sh');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        'sleep 30 & child=$!',
        'kill -9 $child; wait $child 2>/dev/null',
        `kill -TERM ${protectedPid}`,
        'sleep 0.2',
        `pkill -f ${marker}`,
        'sleep 0.3',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    const log = join(tmp.dir, 'kill.ndjson');
    run = await redline(['exec', '--mode', 'observe', '--log', log, '--protect-pid', String(protectedPid), '--', script]);
    recs = readLog(log);
  });
  after(() => {
    killBystanders();
    tmp.cleanup();
  });

  test('the trial trips: exit code 3', () => {
    assert.equal(run.code, 3, run.stderr);
  });

  test('killing a protected sleep raises a critical process.kill naming sender, target and signal', () => {
    const a = alertsOf(recs).find((r) => r.rule === 'signal-protected-process');
    // the whole log on failure: which events arrived, which daemon records were written
    assert.ok(a, `protected pid ${protectedPid}\n${recs.map((r) => JSON.stringify(r)).join('\n')}\n${run.stderr}`);
    assert.equal(a.category, 'process.kill');
    assert.equal(a.severity, 'critical');
    assert.equal((a.event as { sig: number }).sig, 15);
    assert.equal((a.target as { pid: number }).pid, protectedPid);
    assert.match(String(a.summary), new RegExp(`SIGTERM to protected process sleep \\(pid ${protectedPid}\\)`));
    assert.equal((a.proc as { comm: string }).comm, 'agent.sh');
    assert.equal(isAlive(protectedPid), false, 'observe mode does not stop the kill');
  });

  test('pkill -f of another process raises process.kill against that process', () => {
    const a = alertsOf(recs).find((r) => r.rule === 'signal-outside-tree');
    assert.ok(a);
    assert.equal((a.proc as { comm: string }).comm, 'pkill');
    assert.equal((a.target as { pid: number }).pid, otherPid);
  });

  test('killing its own child raises nothing', () => {
    const kills = alertsOf(recs).filter((r) => r.category === 'process.kill');
    assert.equal(kills.length, 2, JSON.stringify(kills.map((k) => k.summary)));
  });

  test('observe mode records the freeze as skipped and never freezes', () => {
    const actions = recs.filter((r) => r.kind === 'action');
    assert.ok(actions.length >= 1);
    for (const a of actions) {
      assert.equal(a.skipped, true);
      assert.equal(a.ok, false);
    }
    assert.equal(recs.filter((r) => r.kind === 'snapshot').length, 0);
  });
});

describe('process.kill from an unprivileged subject: groups and kill -1', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let recs: LogRecord[];
  let run: Run;
  let groupLeader = 0;

  before(async () => {
    chmodSync(tmp.dir, 0o755);
    groupLeader = bystander();
    const script = join(tmp.dir, 'agent.sh');
    writeFileSync(script, ['#!/bin/sh', `/bin/kill -s TERM -- -${groupLeader}`, 'sleep 0.2', 'kill -9 -1', 'sleep 1'].join('\n'));
    chmodSync(script, 0o755);
    const log = join(tmp.dir, 'group.ndjson');
    run = await redline(['exec', '--mode', 'observe', '--user', 'nobody', '--log', log, '--', script]);
    recs = readLog(log);
  });
  after(() => {
    killBystanders();
    tmp.cleanup();
  });

  test('a process-group kill the kernel refuses (EPERM) is logged as the attempt it was: low, not a kill', () => {
    assert.equal(run.code, 3, run.stderr);
    assert.equal(alertsOf(recs).find((r) => r.rule === 'signal-group-outside-tree'), undefined, 'nothing was sent');
    const a = alertsOf(recs).find((r) => r.rule === 'signal-refused' && (r.event as { target_pid: number }).target_pid === -groupLeader);
    assert.ok(a, JSON.stringify(alertsOf(recs).map((x) => x.rule)));
    assert.equal(a.severity, 'low');
    assert.equal((a.event as { ret: number }).ret, -1);
    assert.equal(isAlive(groupLeader), true, 'nobody cannot kill a root process');
  });

  test('kill -9 -1 is a critical alert', () => {
    const a = alertsOf(recs).find((r) => r.rule === 'signal-everything');
    assert.ok(a);
    assert.equal(a.severity, 'critical');
    assert.match(String(a.summary), /SIGKILL to every process it may signal/);
  });
});

describe('a kill the kernel refuses, in enforce mode', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('kill of a pid that no longer exists (ESRCH): a low attempt, never a freeze', async () => {
    // a pid that was used and is gone: a child that has exited and been reaped
    const gone = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    const log = join(tmp.dir, 'esrch.ndjson');
    const run = await redline(['exec', '--mode', 'enforce', '--log', log, '--socket', 'off', '--', 'sh', '-c', `kill -9 ${gone} 2>/dev/null; sleep 0.3; echo survived`]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /survived/, 'the subject was not frozen or killed');
    const recs = readLog(log);
    const a = alertsOf(recs).find((r) => r.rule === 'signal-refused');
    assert.ok(a, JSON.stringify(alertsOf(recs).map((x) => x.rule)));
    assert.equal(a.severity, 'low');
    assert.equal((a.event as { ret: number; target_pid: number }).ret, -3);
    assert.equal((a.event as { target_pid: number }).target_pid, gone);
    assert.equal(recs.some((r) => r.kind === 'action' && r.action === 'freeze'), false);
  });
});
