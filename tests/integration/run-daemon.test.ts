// `redline run` on an existing cgroup: SIGHUP reload (a broken rule keeps the old rules and
// raises a critical alert), a killed bpftrace is a degraded alert and is restarted, and a
// SIGTERM from outside the subject stops the daemon cleanly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCgroupV2Mount, groupPids, removeGroup } from '../../daemon/cgroup.js';
import { monitorSkipReason } from '../helpers/host.js';
import { bystander, killBystanders } from '../helpers/procs.js';
import { alertsOf, type LogRecord, ROOT, readLog, type Run, startRedline, stopRedline, tempDir, waitForRecord } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('redline run', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const group = join(findCgroupV2Mount() ?? '/nonexistent', `redline-test-run-${process.pid}`);
  const log = join(tmp.dir, 'run.ndjson');
  const rules = join(tmp.dir, 'rules');
  let daemon: ReturnType<typeof startRedline>;
  let stopped: Run;
  let n = 0;

  /** starts a process inside the subject group that signals `victim` */
  function subjectKills(victim: number): Promise<void> {
    const script = join(tmp.dir, `agent-${n++}.sh`);
    writeFileSync(script, `#!/bin/sh\nkill -CONT ${victim}\n`);
    chmodSync(script, 0o755);
    return new Promise((resolve) => {
      const c = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$1"', group, script], { stdio: 'ignore' });
      c.on('exit', () => resolve());
    });
  }

  before(async () => {
    mkdirSync(group, { recursive: true });
    cpSync(join(ROOT, 'rules'), rules, { recursive: true });
    daemon = startRedline(['run', '--subject-cgroup', group, '--log', log, '--rules', rules, '--mode', 'observe']);
    await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'sensor');
  });
  after(async () => {
    await stopRedline(daemon);
    for (const pid of groupPids(group)) process.kill(pid, 'SIGKILL');
    removeGroup(group);
    killBystanders();
    tmp.cleanup();
  });

  test('a subject process signalling a bystander is caught', async () => {
    const v = bystander();
    await subjectKills(v);
    const a = await waitForRecord(log, (r) => r.kind === 'alert' && r.rule === 'signal-outside-tree');
    assert.equal((a.target as { pid: number }).pid, v);
    assert.equal(a.trial, undefined, 'run has no trial until one is marked');
  });

  test('SIGHUP with a broken rule file keeps the old rules and raises a critical alert', async () => {
    writeFileSync(join(rules, 'broken.yaml'), '- rule: broken\n  category: nope\n');
    daemon.child.kill('SIGHUP');
    const a = await waitForRecord(log, (r) => r.kind === 'alert' && r.rule === 'redline.rules-reload-failed');
    assert.equal(a.severity, 'critical');
    assert.match(String(a.summary), /broken\.yaml:2:13/);
    const v = bystander();
    await subjectKills(v);
    await waitForRecord(log, (r) => r.kind === 'alert' && r.rule === 'signal-outside-tree' && (r.target as { pid: number }).pid === v);
  });

  test('a killed bpftrace is a monitor.degraded alert and the sensor comes back', async () => {
    const started = readLog(log).find((r) => r.kind === 'daemon' && r.phase === 'sensor') as LogRecord;
    const [bpf] = started.sensor_pids as number[];
    assert.ok(bpf);
    process.kill(bpf, 'SIGKILL');
    const a = await waitForRecord(log, (r) => r.kind === 'alert' && r.category === 'monitor.degraded' && r.rule === 'redline.sensor-died');
    assert.equal(a.severity, 'high');
    await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'sensor-restarted', 30_000);
    const v = bystander();
    await subjectKills(v);
    await waitForRecord(log, (r) => r.kind === 'alert' && r.rule === 'signal-outside-tree' && (r.target as { pid: number }).pid === v);
  });

  test('SIGTERM from outside the subject stops the daemon cleanly (exit 0)', async () => {
    daemon.child.kill('SIGTERM');
    stopped = await daemon.done;
    assert.equal(stopped.code, 0, stopped.stderr);
    const recs = readLog(log);
    assert.equal(recs[recs.length - 1]?.phase, 'stop');
    assert.ok(alertsOf(recs).length >= 3);
  });
});
