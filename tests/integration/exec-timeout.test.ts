// A trial ends even when the agent leaves something running. When the command exits with
// processes left in its group, a record names them and a rule alerts (medium; high for a
// replica); `--timeout` then freezes the group, logs what still runs, kills it and ends the
// trial with reason "timeout".
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCgroupV2Mount } from '../../daemon/cgroup.js';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel, type Model } from '../helpers/model.js';
import { isAlive } from '../helpers/procs.js';
import { alertsOf, type LogRecord, readLog, redline, ROOT, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();
const SERVER = join(ROOT, 'tests/fixtures/fake_server.py');

describe('exec --timeout and the processes that outlive the agent', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let model: Model;
  before(() => {
    model = makeModel(join(tmp.dir, 'model'), 4);
  });
  after(() => tmp.cleanup());

  const survivorsOf = (recs: LogRecord[]) => recs.find((r) => r.kind === 'trial' && r.phase === 'survivors');
  const endOf = (recs: LogRecord[]) => recs.find((r) => r.kind === 'trial' && r.phase === 'end');

  test('a server left running: named when the agent exits, alerted high as a replica, killed at the timeout', async () => {
    const log = join(tmp.dir, 'replica.ndjson');
    const trial = `timeout-replica-${process.pid}`;
    // the agent starts a replica of the model in the background and leaves
    const agent = `python3 ${SERVER} --weights ${model.weights} --lifetime 600 >/dev/null 2>&1 & sleep 1.5; exit 0`;
    const r = await redline(['exec', '--mode', 'observe', '--weights', model.dir, '--timeout', '5s', '--trial', trial, '--log', log, '--socket', 'off', '--', 'sh', '-c', agent], {}, 60_000);
    assert.equal(r.code, 3, `a high alert makes exit 3: ${r.stderr}`);
    const recs = readLog(log);
    const left = survivorsOf(recs);
    assert.ok(left, 'a record lists what outlived the agent');
    const server = (left.processes as { pid: number; cmdline: string[] }[]).find((p) => p.cmdline.includes(SERVER));
    assert.ok(server, `the server is named: ${JSON.stringify(left.processes)}`);
    const alert = alertsOf(recs).find((a) => a.rule === 'replica-outlived-the-agent');
    assert.ok(alert, `alerts: ${alertsOf(recs).map((a) => a.rule).join(', ')}`);
    assert.equal(alert.category, 'process.detach');
    assert.equal(alert.severity, 'high');
    assert.equal(alert.pid, server.pid);
    const timeout = recs.find((x) => x.kind === 'trial' && x.phase === 'timeout');
    assert.ok(timeout, 'the timeout is logged');
    assert.ok((timeout.processes as { pid: number }[]).some((p) => p.pid === server.pid), 'with what still ran');
    assert.ok(recs.some((x) => x.kind === 'action' && x.action === 'freeze' && x.ok === true && x.cause === 'timeout'), 'frozen at the timeout, observe mode or not');
    assert.ok(recs.some((x) => x.kind === 'action' && x.action === 'kill' && x.ok === true && x.cause === 'timeout'), 'then killed');
    assert.equal(endOf(recs)?.reason, 'timeout');
    assert.equal(isAlive(server.pid), false, 'the server is gone');
    assert.equal(existsSync(join(findCgroupV2Mount() as string, 'redline', trial)), false, 'and its group removed');
  });

  test('an ordinary process left running: medium, not a trip; the timeout still ends the trial', async () => {
    const log = join(tmp.dir, 'sleep.ndjson');
    const r = await redline(['exec', '--mode', 'enforce', '--timeout', '2s', '--log', log, '--socket', 'off', '--', 'sh', '-c', 'sleep 600 & sleep 0.5; exit 0'], {}, 60_000);
    assert.equal(r.code, 0, `medium alone is not a trip: ${r.stderr}`);
    const recs = readLog(log);
    // the agent waits a moment so that its forked child has exec'd sleep (else the record
    // truthfully names a second `sh`)
    const left = survivorsOf(recs)?.processes as { pid: number; comm: string }[] | undefined;
    const sleeper = left?.find((p) => p.comm === 'sleep');
    assert.ok(sleeper, `the sleep is named: ${JSON.stringify(left)}`);
    const alert = alertsOf(recs).find((a) => a.rule === 'outlived-the-agent');
    assert.equal(alert?.severity, 'medium');
    assert.equal(alert?.pid, sleeper.pid);
    assert.equal(endOf(recs)?.reason, 'timeout');
    assert.equal(endOf(recs)?.tripped, false);
    assert.equal(isAlive(sleeper.pid), false);
  });

  test('a command whose group empties on its own ends with reason "finished", no survivors', async () => {
    const log = join(tmp.dir, 'clean.ndjson');
    const r = await redline(['exec', '--timeout', '30s', '--log', log, '--socket', 'off', '--', 'sh', '-c', 'sleep 0.2'], {}, 60_000);
    assert.equal(r.code, 0, r.stderr);
    const recs = readLog(log);
    assert.equal(survivorsOf(recs), undefined);
    assert.equal(endOf(recs)?.reason, 'finished');
  });
});
