// `redline exec` is a small supervisor whose child is the monitor. The harness's process
// exits with a code from the contract whatever becomes of the monitor, never by a signal: a
// daemon whose event loop hangs is killed by its watchdog and exec exits 3 with the trial's
// end record; a daemon lost together with its watchdog is ended by the supervisor itself
// (subject frozen, killed, its group removed, the chain intact). And a harness that SIGKILLs
// `redline exec` stops the trial as an operator's stop: the monitor kills the subject and
// writes the end record. The guard is off here: these are the fallbacks for when it is absent.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { monitorSkipReason, sweepGroup } from '../helpers/host.js';
import { type LogRecord, readLog, redline, startRedline, stopRedline, tempDir, waitForRecord } from '../helpers/redline.js';

const skip = monitorSkipReason();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

describe('redline exec under its supervisor', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const groups: string[] = [];
  const runs: ReturnType<typeof startRedline>[] = [];
  after(async () => {
    for (const r of runs) await stopRedline(r, 10_000);
    for (const g of groups) await sweepGroup(g);
    tmp.cleanup();
  });

  /** an enforce trial of `agent`; resolves once the watchdog is up, with the monitor's pids */
  async function trial(name: string, agent: string, env: Record<string, string> = {}) {
    const log = join(tmp.dir, `${name}.ndjson`);
    const d = startRedline(['exec', '--mode', 'enforce', '--log', log, '--socket', 'off', '--', 'sh', '-c', agent], { REDLINE_GUARD: 'off', ...env });
    runs.push(d);
    const wd = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'watchdog', 30_000);
    const start = await waitForRecord(log, (r) => r.kind === 'trial' && r.phase === 'start', 30_000);
    const daemon = readLog(log).find((r) => r.kind === 'daemon' && r.phase === 'start') as LogRecord;
    groups.push(String(start.cgroup));
    return { d, log, group: String(start.cgroup), daemon: daemon.daemon_pid as number, watchdog: wd.watchdog_pid as number };
  }

  test('the monitor is the child of the process the harness started, and a clean trial exits 0', async () => {
    const t = await trial('clean', 'sleep 0.5');
    assert.notEqual(t.daemon, t.d.child.pid, 'the daemon is not the harness’s process');
    assert.match(readFileSync(`/proc/${t.daemon}/stat`, 'utf8'), new RegExp(`^\\d+ \\(.*\\) \\S (${t.d.child.pid}) `), 'its parent is redline exec');
    const run = await t.d.done;
    assert.equal(run.code, 0, run.stderr.slice(-2000));
    assert.equal(readLog(t.log).find((r) => r.kind === 'trial' && r.phase === 'end')?.reason, 'finished');
  });

  test('a daemon whose event loop hangs is killed by its watchdog; exec exits 3 with the end record, not by SIGKILL', async () => {
    const progress = join(tmp.dir, 'hang-progress');
    const t = await trial('hang', `while :; do date +%s%N > ${progress}; sleep 0.05; done`, { REDLINE_TEST_FAULT: 'hang' });
    const run = await t.d.done;
    assert.equal(run.signal, null, 'no death by a signal');
    assert.equal(run.code, 3, run.stderr.slice(-2000));
    assert.match(run.stderr, /died by SIGKILL; the trial counts as tripped \(exit 3\)/);
    const recs = readLog(t.log);
    const lost = recs.find((r) => r.kind === 'daemon' && r.phase === 'lost');
    assert.match(String(lost?.reason), /stopped answering: no heartbeat/);
    assert.equal(lost?.subject_frozen, true);
    const end = recs.find((r) => r.kind === 'trial' && r.phase === 'end');
    assert.equal(end?.reason, 'monitor-lost');
    assert.equal(end?.ended_by, 'watchdog');
    assert.equal(existsSync(t.group), false, 'the trial’s group is gone');
    const audit = await redline(['audit', t.log]);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  });

  test('the daemon and its watchdog both killed: the supervisor freezes and kills the subject and ends the trial', async () => {
    const progress = join(tmp.dir, 'both-progress');
    const t = await trial('both', `while :; do date +%s%N > ${progress}; sleep 0.05; done`);
    for (let i = 0; i < 100 && !existsSync(progress); i++) await sleep(20);
    process.kill(t.watchdog, 'SIGKILL');
    process.kill(t.daemon, 'SIGKILL');
    const run = await t.d.done;
    assert.equal(run.signal, null);
    assert.equal(run.code, 3, run.stderr.slice(-2000));
    const recs = readLog(t.log);
    const end = recs.find((r) => r.kind === 'trial' && r.phase === 'end');
    assert.equal(end?.ended_by, 'supervisor', JSON.stringify(recs.slice(-4)));
    assert.equal(end?.reason, 'monitor-lost');
    assert.equal(end?.frozen, true);
    const lost = recs.find((r) => r.kind === 'alert' && r.rule === 'redline.monitor-lost');
    assert.match(String(lost?.summary), /its watchdog is gone too; the subject was frozen and killed/);
    assert.equal(existsSync(t.group), false, 'the subject’s group is killed and removed');
    const seen = readFileSync(progress, 'utf8');
    await sleep(300);
    assert.equal(readFileSync(progress, 'utf8'), seen, 'the agent never acts again');
    const audit = await redline(['audit', t.log]);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  });

  test('the harness SIGKILLs redline exec: the monitor kills the subject and ends the trial as an operator’s stop', async () => {
    const t = await trial('harness', 'sleep 60');
    t.d.child.kill('SIGKILL');
    const end = await waitForRecord(t.log, (r) => r.kind === 'trial' && r.phase === 'end', 20_000);
    assert.equal(end.reason, 'operator');
    const kill = readLog(t.log).find((r) => r.kind === 'action' && r.action === 'kill');
    assert.equal(kill?.ok, true);
    assert.match(String(kill?.cause), /the supervisor is gone/);
    for (let i = 0; i < 100 && (alive(t.daemon) || existsSync(t.group)); i++) await sleep(50);
    assert.equal(alive(t.daemon), false, 'the monitor is done');
    assert.equal(existsSync(t.group), false, 'the subject’s group is removed');
  });
});
