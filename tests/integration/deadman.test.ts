// The dead-man's switch: a daemon killed (SIGKILL) or stopped (SIGSTOP, with its sensor) in
// the middle of an enforce trial leaves the subject frozen, never running unwatched; the
// watchdog's records continue the hash chain (`redline audit` verifies it and shows the loss),
// and after the grace period the trial's group is killed and removed.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { findCgroupV2Mount, readEvents } from '../../daemon/cgroup.js';
import { DEADMAN_GRACE_MS } from '../../daemon/deadman.js';
import { monitorSkipReason, sweepGroup } from '../helpers/host.js';
import { type LogRecord, readLog, redline, startRedline, tempDir, waitForRecord } from '../helpers/redline.js';

const skip = monitorSkipReason();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (check()) return true;
    await sleep(5);
  }
  return check();
}

/** exited: gone, or a zombie its new parent has not reaped yet */
function finished(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

describe('the dead-man’s switch', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const groups: string[] = [];
  after(async () => {
    for (const g of groups) await sweepGroup(g);
    tmp.cleanup();
  });

  /** starts an enforce trial of `agent`; resolves once the watchdog is up, with its group */
  async function trial(name: string, agent: string, extra: string[] = []) {
    const log = join(tmp.dir, `${name}.ndjson`);
    const d = startRedline(['exec', '--mode', 'enforce', '--log', log, '--socket', 'off', ...extra, '--', 'sh', '-c', agent]);
    const wd = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'watchdog', 30_000);
    const start = readLog(log).find((r) => r.kind === 'trial' && r.phase === 'start') as LogRecord;
    const sensor = readLog(log).find((r) => r.kind === 'daemon' && r.phase === 'sensor' && r.sensor === 'ebpf') as LogRecord;
    groups.push(String(start.cgroup));
    return { d, log, group: String(start.cgroup), watchdog: wd.watchdog_pid as number, sensor: (sensor.sensor_pids as number[])[0] as number };
  }

  test('SIGKILL of the daemon mid-trial: the subject is frozen within a second and never acts again; the log verifies and shows the loss', async (tc) => {
    const progress = join(tmp.dir, 'progress');
    const t = await trial('killed', `i=0; while :; do i=$((i+1)); echo $i > ${progress}; sleep 0.02; done`);
    assert.ok(await until(() => existsSync(progress), 5000), 'the agent runs');
    const t0 = performance.now();
    t.d.child.kill('SIGKILL');
    assert.ok(await until(() => readEvents(t.group).frozen === 1, 1000), 'frozen within a second of the daemon’s death');
    const ms = performance.now() - t0;
    const seen = readFileSync(progress, 'utf8');
    await sleep(1000);
    assert.equal(readFileSync(progress, 'utf8'), seen, 'the agent never acted again');
    const lost = await waitForRecord(t.log, (r) => r.kind === 'daemon' && r.phase === 'lost', 5000);
    assert.equal(lost.subject_frozen, true);
    assert.match(String(lost.reason), /gone|pipe closed/);
    // after the grace period the trial's group is killed and removed
    const cleanup = await waitForRecord(t.log, (r) => r.kind === 'daemon' && r.phase === 'lost-cleanup', DEADMAN_GRACE_MS + 5000);
    assert.equal(cleanup.group_removed, true);
    assert.equal(existsSync(t.group), false);
    assert.ok(await until(() => finished(t.watchdog), 3000), 'and the watchdog is done');
    const audit = await redline(['audit', t.log]);
    assert.equal(audit.code, 0, `the chain is intact: ${audit.stdout}${audit.stderr}`);
    assert.match(audit.stdout, /monitor was lost/);
    tc.diagnostic(`daemon SIGKILL → frozen seen ${ms.toFixed(1)} ms`);
  });

  test('SIGSTOP of the daemon and its sensor during a slow copy of the weights: frozen before it completes, the stopped daemon never writes again', async () => {
    const weights = join(tmp.dir, 'model.safetensors');
    writeFileSync(weights, randomBytes(40 * 65536));
    const out = join(tmp.dir, 'copy.safetensors');
    const go = join(tmp.dir, 'go');
    // the weights copied 64 KiB at a time, 50 ms apart: two seconds, unless frozen
    const copy = `for i in $(seq 0 39); do dd if=${weights} of=${out} bs=64k count=1 skip=$i seek=$i conv=notrunc 2>/dev/null; sleep 0.05; done`;
    const t = await trial('stopped', `while [ ! -e ${go} ]; do sleep 0.02; done; ${copy}`, ['--weights', weights]);
    process.kill(t.sensor, 'SIGSTOP');
    process.kill(t.d.child.pid as number, 'SIGSTOP');
    writeFileSync(go, '');
    assert.ok(await until(() => readEvents(t.group).frozen === 1, 1000), 'frozen within a second of the stop');
    const size = existsSync(out) ? statSync(out).size : 0;
    await sleep(800);
    assert.equal(existsSync(out) ? statSync(out).size : 0, size, 'no byte written after the freeze');
    assert.ok(size < 40 * 65536, `the write did not complete (${size} bytes)`);
    const lost = await waitForRecord(t.log, (r) => r.kind === 'daemon' && r.phase === 'lost', 5000);
    assert.match(String(lost.reason), /stopped/);
    assert.ok((lost.killed_monitor as number[]).includes(t.d.child.pid as number), 'the stopped daemon was killed, so the chain has one writer');
    const run = await t.d.done;
    assert.equal(run.signal, 'SIGKILL');
    await waitForRecord(t.log, (r) => r.kind === 'daemon' && r.phase === 'lost-cleanup', DEADMAN_GRACE_MS + 5000);
    const audit = await redline(['audit', t.log]);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  });

  test('run: a daemon started after its predecessor was lost finds the subject frozen, names the loss from the log, and keeps it frozen', async () => {
    const log = join(tmp.dir, 'restart.ndjson');
    const progress = join(tmp.dir, 'restart-progress');
    const agent = spawn('sh', ['-c', `i=0; while :; do i=$((i+1)); echo $i > ${progress}; sleep 0.02; done`], { stdio: 'ignore' });
    const group = join(findCgroupV2Mount() as string, 'redline', `pid-${agent.pid}`);
    groups.push(group);
    try {
      const first = startRedline(['run', '--subject-pid', String(agent.pid), '--mode', 'enforce', '--log', log, '--ws', 'off', '--socket', 'off']);
      await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'watchdog', 30_000);
      first.child.kill('SIGKILL');
      const lost = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'lost', 5000);
      assert.equal(readEvents(group).frozen, 1, 'the watchdog froze the subject');
      // the harness (or systemd) starts redline again on the same subject and log
      const second = startRedline(['run', '--subject-pid', String(agent.pid), '--mode', 'enforce', '--log', log, '--ws', 'off', '--socket', 'off']);
      const found = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'found-frozen', 30_000);
      assert.equal(found.subject, group);
      assert.deepEqual((found.lost as LogRecord).seq, lost.seq, 'it names the record of the loss');
      assert.match(String(found.detail), /was lost at record \d+ \(the daemon (is gone|exited)/);
      await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'watchdog' && r.seq > (found.seq as number), 30_000);
      const seen = readFileSync(progress, 'utf8');
      await sleep(500);
      assert.equal(readEvents(group).frozen, 1, 'still frozen under the new daemon');
      assert.equal(readFileSync(progress, 'utf8'), seen, 'the agent did not act again');
      second.child.kill('SIGTERM');
      await second.done;
      const audit = await redline(['audit', log]);
      assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    } finally {
      agent.kill('SIGKILL');
    }
  });

  test('a clean end says goodbye: no loss recorded, the watchdog gone', async () => {
    const log = join(tmp.dir, 'clean.ndjson');
    const r = await redline(['exec', '--log', log, '--socket', 'off', '--', 'sleep', '0.2']);
    assert.equal(r.code, 0, r.stderr);
    const recs = readLog(log);
    const wd = recs.find((x) => x.kind === 'daemon' && x.phase === 'watchdog');
    assert.ok(wd);
    assert.ok(await until(() => finished(wd.watchdog_pid as number), 3000), 'the watchdog left');
    assert.equal(recs.some((x) => x.phase === 'lost'), false);
    await sleep(500);
    assert.equal(readLog(log).some((x) => x.phase === 'lost'), false, 'nothing written after the daemon’s own stop');
  });
});
