// Enforce: a subject with 200 busy children trips a rule and is frozen — none of them
// progresses — the snapshot is logged, and after-trip kill empties the group.
// Observe: the same subject is not frozen.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { groupPids } from '../../daemon/cgroup.js';
import { readStat } from '../../daemon/sensors/proc/read.js';
import { monitorSkipReason } from '../helpers/host.js';
import { bystander, killBystanders } from '../helpers/procs.js';
import { type LogRecord, readLog, startRedline, tempDir, waitForRecord } from '../helpers/redline.js';

const skip = monitorSkipReason();
const CHILDREN = 200;

function cpuTicks(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      sum += Number(rest[11]) + Number(rest[12]);
    } catch {
      // exited
    }
  }
  return sum;
}

function agent(dir: string, victim: number): string {
  const script = join(dir, 'agent.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      `i=0; while [ $i -lt ${CHILDREN} ]; do (while :; do :; done) & i=$((i+1)); done`,
      'sleep 0.5',
      `kill -STOP ${victim}`,
      // in observe mode the busy children are still running: end them after a while
      'sleep 1.5',
      `touch ${join(dir, 'reached-end')}`,
      'kill -9 0',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  return script;
}

describe('freeze (enforce, after-trip hold, then kill)', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let recs: LogRecord[] = [];
  let group = '';
  let progressed = -1;
  let frozenPids = 0;
  let code: number | null = null;

  before(async () => {
    const victim = bystander();
    const log = join(tmp.dir, 'freeze.ndjson');
    const { child, done } = startRedline(['exec', '--log', log, '--after-trip', 'hold', '--protect-pid', String(victim), '--', agent(tmp.dir, victim)]);
    try {
      const freeze = await waitForRecord(log, (r) => r.kind === 'action' && r.action === 'freeze', 60_000);
      assert.equal(freeze.ok, true);
      const start = readLog(log).find((r) => r.kind === 'trial' && r.phase === 'start');
      group = String(start?.cgroup);
      const pids = groupPids(group);
      frozenPids = pids.length;
      const before = cpuTicks(pids);
      await new Promise((r) => setTimeout(r, 500));
      progressed = cpuTicks(pids) - before;
      // an operator's SIGINT ends a held trial: the subject is killed
      child.kill('SIGINT');
      code = (await done).code;
    } finally {
      child.kill('SIGKILL');
      killBystanders();
    }
    recs = readLog(log);
  });
  after(() => tmp.cleanup());

  test('all 200 children and the agent are frozen and none progresses', () => {
    assert.ok(frozenPids >= CHILDREN + 1, `only ${frozenPids} pids in the group`);
    assert.equal(progressed, 0);
    assert.equal(existsSync(join(tmp.dir, 'reached-end')), false);
  });

  test('the alert is logged before the freeze, the snapshot holds the tree with command lines', () => {
    const alert = recs.find((r) => r.kind === 'alert' && r.rule === 'signal-protected-process');
    const freeze = recs.find((r) => r.kind === 'action' && r.action === 'freeze');
    const snap = recs.find((r) => r.kind === 'snapshot');
    assert.ok(alert && freeze && snap);
    assert.ok(alert.seq < freeze.seq && freeze.seq < snap.seq);
    const procs = snap.processes as { pid: number; cmdline: string[]; state: string }[];
    assert.ok(procs.length >= CHILDREN + 1);
    assert.ok(procs.some((p) => p.cmdline.join(' ').includes('agent.sh')));
  });

  test('the operator SIGINT killed the held subject and emptied the group', () => {
    assert.equal(code, 3);
    const kill = recs.find((r) => r.kind === 'action' && r.action === 'kill');
    assert.ok(kill && kill.ok === true);
    assert.ok(recs.some((r) => r.kind === 'trial' && r.phase === 'end'));
    assert.equal(existsSync(group), false, 'the trial group is removed');
  });
});

describe('after-trip kill (default) and observe mode', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => {
    killBystanders();
    tmp.cleanup();
  });

  test('after-trip kill empties the group once the snapshot is logged', async () => {
    const victim = bystander();
    const log = join(tmp.dir, 'kill.ndjson');
    const { child, done } = startRedline(['exec', '--log', log, '--protect-pid', String(victim), '--', agent(tmp.dir, victim)]);
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const run = await done;
    clearTimeout(t);
    assert.equal(run.code, 3, run.stderr);
    const recs = readLog(log);
    const snap = recs.find((r) => r.kind === 'snapshot');
    const kill = recs.find((r) => r.kind === 'action' && r.action === 'kill');
    assert.ok(snap && kill && kill.ok === true);
    assert.ok(snap.seq < kill.seq);
    assert.equal(existsSync(join(tmp.dir, 'reached-end')), false);
    // enforce mode: the subject's seccomp filter refuses signals to --protect-pid processes
    assert.notEqual(readStat(victim)?.state, 'T', 'the SIGSTOP was refused in the kernel');
  });

  test('observe mode does not freeze: the agent reaches its end', async () => {
    const victim = bystander();
    const log = join(tmp.dir, 'observe.ndjson');
    const { child, done } = startRedline(['exec', '--mode', 'observe', '--log', log, '--protect-pid', String(victim), '--', agent(tmp.dir, victim)]);
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const run = await done;
    clearTimeout(t);
    assert.equal(run.code, 3);
    const recs = readLog(log);
    assert.ok(recs.some((r) => r.kind === 'alert' && r.rule === 'signal-protected-process'));
    assert.ok(recs.some((r) => r.kind === 'action' && r.action === 'freeze' && r.skipped === true));
    assert.equal(recs.filter((r) => r.kind === 'snapshot').length, 0);
    assert.equal(existsSync(join(tmp.dir, 'reached-end')), true);
  });
});
