// process.detach: double fork, setsid, nohup and persistence tools, through real eBPF.
// The high ones (leaving the tree, persistence) freeze; nohup and setsid alone only alert.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { alertsOf, type LogRecord, readLog, redline, type Run, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('process.detach', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let run: Run;
  let recs: LogRecord[];

  before(async () => {
    // a stand-in crontab: what counts is that the subject runs a program called crontab
    const bin = join(tmp.dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'crontab'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'crontab'), 0o755);
    const script = join(tmp.dir, 'agent.sh');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        // double fork: the middle shell exits, its sleep is adopted outside the tree
        'sh -c "sleep 1.5 & exit 0"',
        'sleep 0.3',
        'setsid sleep 0.2',
        'nohup sleep 0.1 >/dev/null 2>&1',
        `PATH=${bin}:$PATH crontab ${join(tmp.dir, 'jobs')}`,
        'sleep 1.6',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    const log = join(tmp.dir, 'detach.ndjson');
    // observe mode: the high ones would freeze, and every step must still run
    run = await redline(['exec', '--mode', 'observe', '--log', log, '--', script]);
    recs = readLog(log);
  });
  after(() => tmp.cleanup());

  const rules = () => alertsOf(recs).map((a) => a.rule);

  test('a double fork that leaves the tree is a medium process.detach alert (the orphan is still the subject’s)', () => {
    const a = alertsOf(recs).find((r) => r.rule === 'left-process-tree');
    assert.ok(a, JSON.stringify(rules()));
    assert.equal(a.category, 'process.detach');
    assert.equal(a.severity, 'medium');
    assert.equal((a.proc as { comm: string }).comm, 'sleep');
    // the ancestry is kept after the reparenting: the exited shell is still named
    const anc = (a.proc as { ancestors: { comm: string }[] }).ancestors.map((x) => x.comm);
    assert.equal(anc[0], 'sh', JSON.stringify(anc));
  });

  test('setsid is caught both as the syscall and as the tool', () => {
    assert.ok(rules().includes('new-session'), JSON.stringify(rules()));
    assert.ok(alertsOf(recs).some((a) => a.rule === 'detach-tool' && (a.proc as { comm: string }).comm === 'setsid'));
  });

  test('nohup is a detach-tool alert', () => {
    assert.ok(alertsOf(recs).some((a) => a.rule === 'detach-tool' && (a.proc as { comm: string }).comm === 'nohup'));
  });

  test('crontab is a high persistence alert; the trial trips', () => {
    const a = alertsOf(recs).find((r) => r.rule === 'persistence-tool');
    assert.ok(a);
    assert.equal(a.severity, 'high');
    assert.equal(run.code, 3);
  });

  test('persistence freezes; leaving the tree, nohup and setsid alone only alert', () => {
    const causes = new Set(recs.filter((r) => r.kind === 'action' && r.action === 'freeze').map((r) => r.cause));
    assert.ok(causes.has('persistence-tool'), JSON.stringify([...causes]));
    assert.ok(!causes.has('left-process-tree') && !causes.has('detach-tool') && !causes.has('new-session'), JSON.stringify([...causes]));
  });
});

describe('orphans: left on purpose, or just left (enforce)', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('the daemon recipe (setsid, then a fork whose parent exits): left-process-tree at medium, not frozen; the orphan is still watched', async () => {
    const log = join(tmp.dir, 'recipe.ndjson');
    // the orphan, once adopted, signals another experiment's process: still judged as the subject's
    const victim = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
    try {
      const r = await redline(['exec', '--mode', 'enforce', '--log', log, '--socket', 'off', '--', 'sh', '-c', `setsid sh -c 'sleep 1 && kill -CONT ${victim.pid} & exit 0'; sleep 0.5; echo unfrozen; sleep 1.5`]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stdout, /unfrozen/, 'leaving the tree froze nothing');
      const recs = readLog(log);
      const a = alertsOf(recs).find((x) => x.rule === 'left-process-tree');
      assert.ok(a, JSON.stringify(alertsOf(recs).map((x) => x.rule)));
      assert.equal(a.severity, 'medium');
      const kill = alertsOf(recs).find((x) => x.rule === 'signal-outside-tree');
      assert.ok(kill, JSON.stringify(alertsOf(recs).map((x) => x.rule)));
      assert.equal((kill.target as { pid: number }).pid, victim.pid);
    } finally {
      victim.kill('SIGKILL');
    }
  });

  test('a tool that forks once and makes its own session (git gc --auto, ssh-agent): medium, not frozen', async () => {
    const log = join(tmp.dir, 'own-session.ndjson');
    const tool = 'import os, time\nif os.fork():\n    os._exit(0)\nos.setsid()\ntime.sleep(1)';
    const r = await redline(['exec', '--mode', 'enforce', '--log', log, '--socket', 'off', '--', 'sh', '-c', `python3 -c "$(printf '${tool}')"; sleep 1.5; echo unfrozen`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /unfrozen/);
    const recs = readLog(log);
    assert.equal(alertsOf(recs).find((x) => x.rule === 'left-process-tree'), undefined, JSON.stringify(alertsOf(recs).map((x) => [x.rule, x.summary])));
    assert.ok(alertsOf(recs).some((x) => x.rule === 'new-session' && x.severity === 'medium'));
  });
});
