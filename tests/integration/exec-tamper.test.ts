// monitor.tamper: the subject sends SIGTERM to the daemon; the daemon survives, freezes
// the subject (enforce), kills it (after-trip kill) and writes the trial's end record.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { alertsOf, type LogRecord, readLog, redline, type Run, startRedline, tempDir, waitForRecord } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('monitor.tamper', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let run: Run;
  let recs: LogRecord[];

  before(async () => {
    const script = join(tmp.dir, 'agent.sh');
    // CMD's parent is the daemon itself; after the SIGTERM it would go on to its next step
    writeFileSync(script, ['#!/bin/sh', 'kill -TERM $PPID', 'sleep 2', `touch ${join(tmp.dir, 'next-step')}`].join('\n'));
    chmodSync(script, 0o755);
    const log = join(tmp.dir, 'tamper.ndjson');
    // the guard off: with it, the kernel refuses the SIGTERM (tests/integration/guard.test.ts);
    // this is the fallback, a daemon that receives it and judges its sender
    run = await redline(['exec', '--log', log, '--', script], { REDLINE_GUARD: 'off' });
    recs = readLog(log);
  });
  after(() => tmp.cleanup());

  test('the daemon is not stopped by the SIGTERM and exits 3 (tripped)', () => {
    assert.equal(run.signal, null);
    assert.equal(run.code, 3, run.stderr);
  });

  test('a critical monitor.tamper alert names the signal', () => {
    const a = alertsOf(recs).find((r) => r.category === 'monitor.tamper');
    assert.ok(a, JSON.stringify(alertsOf(recs)));
    assert.equal(a.severity, 'critical');
    assert.match(String(a.summary), /SIGTERM to the monitor/);
  });

  test('the signal is logged as ignored, the subject frozen then killed', () => {
    assert.ok(recs.some((r) => r.kind === 'daemon' && r.phase === 'signal-ignored' && r.signal === 'SIGTERM'));
    const freeze = recs.find((r) => r.kind === 'action' && r.action === 'freeze');
    assert.ok(freeze && freeze.ok === true);
    const kill = recs.find((r) => r.kind === 'action' && r.action === 'kill');
    assert.ok(kill && kill.ok === true);
    assert.ok((freeze.seq as number) < (kill.seq as number));
  });

  test('the trial ends with its end record, and the agent never reached its next step', async () => {
    const end = recs.find((r) => r.kind === 'trial' && r.phase === 'end');
    assert.ok(end);
    assert.equal(end.exit_code, 3);
    const { existsSync } = await import('node:fs');
    assert.equal(existsSync(join(tmp.dir, 'next-step')), false);
  });
});

describe('tamper through a thread, and an operator stop in observe mode', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('tkill to one of the daemon’s threads is monitor.tamper; SIGINT from the operator kills the subject', async () => {
    const script = join(tmp.dir, 'agent.sh');
    // pick a thread of the daemon that is not its main thread, and tkill it (signal 0)
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        'tid=$(ls /proc/$PPID/task | grep -v "^$PPID$" | head -1)',
        `python3 -c "import ctypes,sys; ctypes.CDLL(None).syscall(200, int(sys.argv[1]), 0)" $tid`,
        'sleep 30',
        `touch ${join(tmp.dir, 'finished')}`,
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    const log = join(tmp.dir, 'thread.ndjson');
    const { child, done } = startRedline(['exec', '--mode', 'observe', '--log', log, '--', script]);
    try {
      const a = await waitForRecord(log, (r) => r.kind === 'alert' && r.category === 'monitor.tamper');
      assert.equal((a.event as { syscall: string }).syscall, 'tkill');
      // the daemon: the child of `redline exec` (its supervisor), named in the log's first record
      const daemon = readLog(log).find((r) => r.kind === 'daemon' && r.phase === 'start');
      assert.equal((a.target as { pid: number }).pid, daemon?.daemon_pid);
      assert.notEqual(daemon?.daemon_pid, child.pid);
      child.kill('SIGINT');
      const run = await done;
      assert.equal(run.code, 3);
      const recs = readLog(log);
      assert.ok(recs.some((r) => r.kind === 'action' && r.action === 'kill' && r.ok === true && String(r.cause).includes('SIGINT')));
      assert.ok(recs.some((r) => r.kind === 'trial' && r.phase === 'end'));
      const { existsSync } = await import('node:fs');
      assert.equal(existsSync(join(tmp.dir, 'finished')), false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('tamper through files: the audit log and the cgroup', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('an unprivileged subject trying to leave its cgroup or write the log is caught, even though it fails', async () => {
    const { chmodSync: chmod } = await import('node:fs');
    chmod(tmp.dir, 0o755);
    const log = join(tmp.dir, 'files.ndjson');
    const script = join(tmp.dir, 'agent.sh');
    const { findCgroupV2Mount } = await import('../../daemon/cgroup.js');
    const root = findCgroupV2Mount();
    writeFileSync(script, ['#!/bin/sh', `echo $$ > ${root}/cgroup.procs`, `echo '{}' >> ${log}`, 'sleep 1'].join('\n'));
    chmodSync(script, 0o755);
    const r = await redline(['exec', '--mode', 'observe', '--user', 'nobody', '--log', log, '--', script]);
    assert.equal(r.code, 3, r.stderr);
    const tampers = alertsOf(readLog(log)).filter((a) => a.rule === 'write-monitor-files');
    const paths = tampers.map((a) => (a.event as { path: string }).path);
    assert.ok(paths.includes(`${root}/cgroup.procs`), JSON.stringify(paths));
    assert.ok(paths.includes(log), JSON.stringify(paths));
  });
});

describe('SIGTERM to the daemon and its sensor in one breath', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  // both orders: the sensor killed first cannot report the daemon's SIGTERM at all; killed
  // second it may or may not have printed it. Either way the stop is the subject's, never an
  // operator's: a monitor.tamper alert, the trial tripped, the agent stopped before its next step.
  for (const order of ['sensor first', 'daemon first'] as const) {
    test(`${order}: monitor.tamper and a tripped trial, never a clean operator stop`, async () => {
      const go = join(tmp.dir, `go-${order.split(' ')[0]}`);
      const next = join(tmp.dir, `next-${order.split(' ')[0]}`);
      const script = join(tmp.dir, `breath-${order.split(' ')[0]}.sh`);
      writeFileSync(script, ['#!/bin/sh', `while [ ! -s ${go} ]; do sleep 0.05; done`, `kill -TERM $(cat ${go})`, 'sleep 2', `touch ${next}`].join('\n'));
      chmodSync(script, 0o755);
      const log = join(tmp.dir, `breath-${order.split(' ')[0]}.ndjson`);
      const { child, done } = startRedline(['exec', '--mode', 'enforce', '--log', log, '--socket', 'off', '--', script]);
      try {
        const attached = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'sensor' && r.sensor === 'ebpf');
        const sensor = (attached.sensor_pids as number[])[0] as number;
        writeFileSync(go, order === 'sensor first' ? `${sensor} ${child.pid}` : `${child.pid} ${sensor}`);
        const run = await done;
        assert.equal(run.code, 3, run.stderr);
        const recs = readLog(log);
        const tamper = alertsOf(recs).filter((a) => a.category === 'monitor.tamper');
        assert.ok(tamper.length > 0, JSON.stringify(recs.filter((r) => r.kind === 'daemon' || r.kind === 'alert').map((r) => [r.phase ?? r.rule, r.summary ?? r.reason])));
        const end = recs.find((r) => r.kind === 'trial' && r.phase === 'end');
        assert.equal(end?.tripped, true);
        assert.ok(recs.some((r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true), 'frozen');
        assert.equal(existsSync(next), false, 'the agent never reached its next step');
      } finally {
        child.kill('SIGKILL');
      }
    });
  }
});
