// The control socket end to end, through the real CLI: status, freeze, thaw, mode, trial
// marks, reload (a broken rule keeps the old rules and raises a critical alert), bad
// requests, kill; every command in the log as an action record. Then `exec` with a control
// socket, and systemd readiness/watchdog through the real systemd-notify.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCgroupV2Mount, groupPids, removeGroup } from '../../daemon/cgroup.js';
import { monitorSkipReason, sweepGroup } from '../helpers/host.js';
import { bystander, isAlive, killBystanders } from '../helpers/procs.js';
import { readLog, redline, ROOT, startRedline, stopRedline, tempDir, waitForRecord } from '../helpers/redline.js';
import { type Daemon, startDaemon } from '../helpers/stream.js';

const skip = monitorSkipReason();

describe('the control socket', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const rules = join(tmp.dir, 'rules');
  let d: Daemon;
  let group = '';
  const ctl = (...args: string[]) => redline([...args, '--socket', d.socket]);
  const frozen = () => /frozen 1/.test(readFileSync(join(group, 'cgroup.events'), 'utf8'));

  before(async () => {
    cpSync(join(ROOT, 'rules'), rules, { recursive: true });
    d = await startDaemon(tmp.dir, ['--rules', rules]);
    group = join(findCgroupV2Mount() as string, 'redline', `pid-${d.agent.pid}`);
  });
  after(async () => {
    await stopRedline(d);
    d?.agent.kill('SIGKILL');
    if (group) {
      for (const pid of groupPids(group)) process.kill(pid, 'SIGKILL');
      const t0 = Date.now();
      while (groupPids(group).length > 0 && Date.now() - t0 < 2000);
      removeGroup(group);
    }
    killBystanders();
    tmp.cleanup();
  });

  test('the socket is mode 0600', () => {
    assert.equal(statSync(d.socket).mode & 0o777, 0o600);
  });

  test('status: sensors and their health, subject, mode, counts, chain head', async () => {
    const r = await ctl('status');
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.mode, 'observe');
    assert.equal(s.subject, `cgroup ${group}`);
    const ebpf = s.sensors.find((x: { name: string }) => x.name === 'ebpf');
    assert.equal(ebpf.running, true);
    assert.ok(s.sensors.some((x: { name: string }) => x.name === 'ports'));
    assert.equal(typeof s.counts.alerts, 'number');
    const logged = readLog(d.log).find((x) => x.seq === s.chain.seq);
    assert.equal(logged?.hash, s.chain.hash, 'the chain head is the log’s');
    await waitForRecord(d.log, (x) => x.kind === 'action' && x.action === 'status' && x.cause === 'control' && x.ok === true);
  });

  test('freeze and thaw act on the subject, in observe mode too, and are logged', async () => {
    let r = await ctl('freeze');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(frozen(), 'the subject is frozen');
    await waitForRecord(d.log, (x) => x.kind === 'snapshot' && x.cause === 'control');
    r = await ctl('freeze');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /frozen already/);
    r = await ctl('thaw');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!frozen(), 'the subject runs again');
    const actions = readLog(d.log).filter((x) => x.kind === 'action' && x.cause === 'control');
    assert.deepEqual(actions.filter((x) => x.action !== 'status').map((x) => [x.action, x.ok]), [['freeze', true], ['freeze', true], ['thaw', true]]);
  });

  test('mode switches at run time: in enforce mode the next trip freezes', async () => {
    let r = await ctl('mode', 'enforce');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /observe → enforce/);
    await d.provoke();
    await waitForRecord(d.log, (x) => x.kind === 'action' && x.action === 'freeze' && x.cause === 'signal-outside-tree' && x.ok === true);
    assert.ok(frozen());
    r = await ctl('thaw');
    assert.equal(r.code, 0);
    r = await ctl('mode', 'observe');
    assert.equal(r.code, 0);
    await waitForRecord(d.log, (x) => x.kind === 'action' && x.action === 'mode' && x.mode === 'observe' && x.previous === 'enforce');
  });

  test('trial start NAME / trial end mark a trial; its records carry the name; a second start is refused', async () => {
    let r = await ctl('trial', 'start', 'run-7', 'model=A', 'seed=7');
    assert.equal(r.code, 0, r.stderr);
    r = await ctl('trial', 'start', 'run-8');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /run-7 is running/);
    const a = await d.provoke();
    assert.equal(a.trial, 'run-7');
    r = await ctl('trial', 'end');
    assert.equal(r.code, 0, r.stderr);
    const recs = readLog(d.log);
    const start = recs.find((x) => x.kind === 'trial' && x.phase === 'start' && x.trial === 'run-7');
    const end = recs.find((x) => x.kind === 'trial' && x.phase === 'end' && x.trial === 'run-7');
    assert.ok(start && end);
    // the metadata given with the start is in its record, for audit --by
    assert.deepEqual(start.meta, { model: 'A', seed: '7' });
    assert.equal(end.alerts, 1);
    assert.equal(end.tripped, true);
    r = await ctl('trial', 'end');
    assert.equal(r.code, 1);
    assert.equal((await ctl('trial', 'start', 'bad name!')).code, 1);
    assert.equal((await ctl('trial', 'start', 'run-9', 'no-equals-sign')).code, 2);
  });

  test('reload: a broken rule keeps the old rules and raises a critical alert; a good one loads', async () => {
    const file = join(rules, 'process.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, `${good}\n- rule: broken\n  category: process.kill\n  severity: high\n  events: [signal]\n  condition: proc.nosuchfield\n  summary: x\n`);
    let r = await ctl('reload');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /process\.yaml:\d+:\d+/);
    const alert = await waitForRecord(d.log, (x) => x.kind === 'alert' && x.rule === 'redline.rules-reload-failed');
    assert.equal(alert.severity, 'critical');
    // the old rules still catch
    await d.provoke();
    writeFileSync(file, good);
    r = await ctl('reload');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rules reloaded/);
  });

  test('bad requests get an error answer; the daemon goes on', async () => {
    const answer = (payload: string) =>
      new Promise<string>((resolve) => {
        const s = connect(d.socket);
        let got = '';
        s.on('data', (c) => {
          got += c;
        });
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
        s.write(payload);
        setTimeout(() => s.end(), 500);
      });
    assert.match(await answer('not json at all\n'), /"ok":false.*bad request/);
    assert.match(await answer('{"cmd":"explode"}\n'), /unknown command/);
    assert.match(await answer(`${'x'.repeat(70_000)}`), /longer than/);
    assert.equal((await ctl('status')).code, 0);
  });

  test('kill: the subject is killed; the daemon stays up', async () => {
    const r = await ctl('kill');
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    while (groupPids(group).length > 0 && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(groupPids(group), []);
    assert.ok(isAlive(d.child.pid as number));
    assert.equal((await ctl('status')).code, 0);
  });

  test('no daemon on the socket: exit 1 with the reason', async () => {
    const r = await redline(['status', '--socket', join(tmp.dir, 'nobody.sock')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ENOENT|is redline running/);
  });
});

describe('exec with a control socket', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => {
    killBystanders();
    tmp.cleanup();
  });

  test('thaw lets a held subject go on; exec refuses to start another trial', async () => {
    const socket = join(tmp.dir, 'exec.sock');
    const log = join(tmp.dir, 'exec.ndjson');
    const done = join(tmp.dir, 'done');
    // trips at once (a signal outside its tree), then, once thawed, finishes its work
    const victim = bystander();
    const d = startRedline(['exec', '--after-trip', 'hold', '--socket', socket, '--log', log, '--', '/bin/sh', '-c', `kill -CONT ${victim}; sleep 0.5; touch ${done}`]);
    try {
      await waitForRecord(log, (r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true);
      await new Promise((r) => setTimeout(r, 1000));
      assert.throws(() => statSync(done), 'frozen: it did not finish');
      const trial = await redline(['trial', 'start', 'x', '--socket', socket]);
      assert.equal(trial.code, 1);
      assert.match(trial.stderr, /runs the one trial/);
      const thaw = await redline(['thaw', '--socket', socket]);
      assert.equal(thaw.code, 0, thaw.stderr);
      const run = await d.done;
      assert.equal(run.code, 3);
      assert.ok(statSync(done).isFile(), 'thawed, it finished');
    } finally {
      d.child.kill('SIGKILL');
    }
  });

  test('a mode switched to enforce reaches the watchdog: the daemon killed after it, the subject is frozen', async () => {
    const socket = join(tmp.dir, 'switch.sock');
    const log = join(tmp.dir, 'switch.ndjson');
    const progress = join(tmp.dir, 'switch-progress');
    const d = startRedline(['exec', '--mode', 'observe', '--socket', socket, '--log', log, '--', '/bin/sh', '-c', `i=0; while :; do i=$((i+1)); echo $i > ${progress}; sleep 0.02; done`]);
    let group = '';
    try {
      await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'watchdog', 30_000);
      group = String(readLog(log).find((r) => r.kind === 'trial' && r.phase === 'start')?.cgroup);
      const sw = await redline(['mode', 'enforce', '--socket', socket]);
      assert.equal(sw.code, 0, sw.stderr);
      // the daemon: the child of `redline exec` (its supervisor)
      process.kill(readLog(log).find((r) => r.kind === 'daemon' && r.phase === 'start')?.daemon_pid as number, 'SIGKILL');
      const lost = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'lost', 5000);
      assert.equal(lost.subject_frozen, true, 'observe at start, enforce when lost: frozen');
      const seen = readFileSync(progress, 'utf8');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(readFileSync(progress, 'utf8'), seen, 'the agent did not act again');
    } finally {
      d.child.kill('SIGKILL');
      if (group) await sweepGroup(group);
    }
  });
});

describe('systemd readiness and watchdog', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('READY=1 once monitoring, WATCHDOG=1 while healthy, STOPPING=1 at stop — through systemd-notify', async (t) => {
    const which = await redline(['doctor']);
    if (!/ok\s+systemd notify/.test(which.stdout)) return t.skip('systemd-notify is not installed');
    const sock = join(tmp.dir, 'notify.sock');
    // a stand-in for systemd's notification socket: prints each datagram it receives
    const listener = spawn('python3', ['-c', `import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(${JSON.stringify(sock)})\nprint("bound", flush=True)\nwhile True:\n    print(s.recv(4096).decode().replace("\\n", " "), flush=True)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let heard = '';
    listener.stdout.on('data', (c) => {
      heard += c;
    });
    const agent = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      while (!heard.includes('bound')) await new Promise((r) => setTimeout(r, 20));
      const log = join(tmp.dir, 'notify.ndjson');
      const d = startRedline(['run', '--subject-pid', String(agent.pid), '--log', log, '--ws', 'off', '--socket', 'off'], { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '1000000' });
      const t0 = Date.now();
      while (!/WATCHDOG=1/.test(heard) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
      assert.match(heard, new RegExp(`MAINPID=${d.child.pid} READY=1 STATUS=monitoring`));
      assert.match(heard, /WATCHDOG=1/);
      // ready only once the sensor is attached
      assert.ok(readLog(log).some((r) => r.kind === 'daemon' && r.phase === 'sensor' && r.sensor === 'ebpf'));
      d.child.kill('SIGTERM');
      assert.equal((await d.done).code, 0);
      assert.match(heard, /STOPPING=1/);
    } finally {
      listener.kill('SIGKILL');
      agent.kill('SIGKILL');
      const group = join(findCgroupV2Mount() as string, 'redline', `pid-${agent.pid}`);
      const t0 = Date.now();
      while (groupPids(group).length > 0 && Date.now() - t0 < 2000);
      removeGroup(group);
    }
  });
});
