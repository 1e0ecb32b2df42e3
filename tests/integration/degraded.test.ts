// monitor.degraded: sensor trouble becomes an alert, --fail-closed freezes a real cgroup,
// and a log on a full disk neither crashes the daemon nor loses the alert.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCgroupV2Mount, groupPids, readEvents, removeGroup } from '../../daemon/cgroup.js';
import { loadRules } from '../../daemon/engine/load.js';
import { Pipeline, type RecordSink } from '../../daemon/pipeline.js';
import { ProcessTable } from '../../daemon/process-table.js';
import type { Subject } from '../../daemon/subject.js';
import { cgroupSkipReason, monitorSkipReason } from '../helpers/host.js';
import { bystander, killBystanders } from '../helpers/procs.js';
import { redline, tempDir } from '../helpers/redline.js';

class MemorySink implements RecordSink {
  records: ({ kind: string } & Record<string, unknown>)[] = [];
  append(fields: { kind: string } & Record<string, unknown>) {
    this.records.push(fields);
    return { seq: this.records.length - 1, hash: '' };
  }
}

describe('sensor trouble', { skip: cgroupSkipReason() ?? false }, () => {
  const mount = findCgroupV2Mount() ?? '';
  const path = join(mount, 'redline', `test-degraded-${process.pid}`);
  const subject: Subject = { kind: 'cgroup2', path, mount };
  const ruleset = loadRules([join(import.meta.dirname, '../../rules')]).ruleset;

  before(async () => {
    mkdirSync(path, { recursive: true });
    const c = spawn('/bin/sh', ['-c', `echo $$ > ${path}/cgroup.procs; exec sleep 60`], { stdio: 'ignore', detached: true });
    while (groupPids(path).length === 0 && c.exitCode === null) await new Promise((r) => setTimeout(r, 10));
  });
  after(() => {
    for (const pid of groupPids(path)) process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    while (groupPids(path).length > 0 && Date.now() - t0 < 2000);
    removeGroup(path);
  });

  const make = (mode: 'observe' | 'enforce', failClosed: boolean) => {
    const sink = new MemorySink();
    const p = new Pipeline({ table: new ProcessTable({ isSubject: () => false }), ruleset: ruleset as NonNullable<typeof ruleset>, subject, sink, mode, failClosed });
    return { sink, p };
  };

  test('lost events: a high monitor.degraded alert; without --fail-closed nothing is frozen', async () => {
    const { sink, p } = make('enforce', false);
    p.sensorTrouble({ sensor: 'ebpf', reason: 'lost-events', detail: 'bpftrace lost 17 events', lost: 17 });
    await new Promise((r) => setTimeout(r, 50));
    const a = sink.records.find((r) => r.kind === 'alert');
    assert.equal(a?.category, 'monitor.degraded');
    assert.equal(a?.severity, 'high');
    assert.equal(a?.lost, 17);
    assert.equal(readEvents(path).frozen, 0);
  });

  test('--fail-closed freezes the subject when the sensor dies', async () => {
    const { sink, p } = make('enforce', true);
    const r = await new Promise((resolve) => {
      p.once('frozen', resolve);
      p.sensorTrouble({ sensor: 'ebpf', reason: 'died', detail: 'bpftrace exited (SIGKILL); restarting' });
    });
    assert.ok(r);
    assert.equal(readEvents(path).frozen, 1);
    assert.ok(sink.records.some((x) => x.kind === 'action' && x.action === 'freeze' && x.ok === true));
    assert.ok(sink.records.some((x) => x.kind === 'snapshot'));
    await p.operatorThaw('test');
    assert.equal(readEvents(path).frozen, 0);
  });

  test('stderr noise from the sensor is a low alert that does not trip', () => {
    const { p } = make('enforce', true);
    p.sensorTrouble({ sensor: 'ebpf', reason: 'stderr', detail: 'WARNING: something' });
    assert.equal(p.tripped(), false);
  });
});

describe('a full disk under the audit log', { skip: monitorSkipReason() ?? false }, () => {
  const tmp = tempDir();
  after(() => {
    killBystanders();
    tmp.cleanup();
  });

  test('the trial still runs, trips and freezes; the unwritten alert is dumped, not lost', async () => {
    const victim = bystander();
    const script = join(tmp.dir, 'agent.sh');
    writeFileSync(script, `#!/bin/sh\nkill -CONT ${victim}\nsleep 2\n`);
    chmodSync(script, 0o755);
    const r = await redline(['exec', '--log', '/dev/full', '--protect-pid', String(victim), '--', script]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /audit log write failed/);
    assert.match(r.stderr, /audit records could not be written to \/dev\/full/);
    assert.match(r.stderr, /"rule":"signal-protected-process"/);
    // the dumped lines are the records themselves: the freeze is among them, and it worked
    const dumped = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { action?: string; ok?: boolean });
    assert.ok(dumped.some((x) => x.action === 'freeze' && x.ok === true), r.stderr);
  });
});
