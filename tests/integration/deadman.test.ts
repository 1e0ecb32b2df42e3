// The dead-man's switch: a daemon killed (SIGKILL) in the middle of an enforce trial leaves the
// subject frozen, never running unwatched; the watchdog's records continue the hash chain
// (`redline audit` verifies it and shows the loss), the trial gets its end record, and after the
// grace period the trial's group is killed and removed. A daemon held but alive (stopped,
// ptraced, frozen or moved in cgroup v2, here by a subject that is root in its group) is no
// loss: the watchdog frees it within half a second, the daemon logs the attack, and sees what
// the subject does next. The kernel guard is off (REDLINE_GUARD=off): it would refuse these
// attacks, and this is the fallback for when it cannot.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { findCgroupV2Mount, readEvents } from '../../daemon/cgroup.js';
import { DEADMAN_GRACE_MS } from '../../daemon/deadman.js';
import { monitorSkipReason, sweepGroup } from '../helpers/host.js';
import { type LogRecord, readLog, redline, startRedline, stopRedline, tempDir, waitForRecord } from '../helpers/redline.js';

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

/** field 3 of /proc/PID/stat ('' when gone) */
function stateOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

/** TracerPid of /proc/PID/status (0: none, or gone) */
function tracerOf(pid: number): number {
  try {
    return Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * How long each of `pids` stayed held after the attack, by /proc: from the time the subject
 * stamped into `at` (epoch ns, written as soon as its attack returned) until this test, looking
 * every millisecond or so, sees the pid free again (null: not within `ms`).
 */
async function heldFor(at: string, pids: number[], held: (pid: number) => boolean, ms: number): Promise<Map<number, number | null>> {
  const spans = new Map<number, number | null>(pids.map((p) => [p, null]));
  const t0 = Date.now();
  let since = NaN;
  while (Date.now() - t0 < ms && [...spans.values()].some((v) => v === null)) {
    // (a stamp half written reads as nothing yet)
    if (Number.isNaN(since) && existsSync(at)) since = /^\d{19}$/.test(readFileSync(at, 'utf8').trim()) ? Number(readFileSync(at, 'utf8').trim()) / 1e6 : NaN;
    if (!Number.isNaN(since)) for (const pid of pids) if (spans.get(pid) === null && !held(pid)) spans.set(pid, Date.now() - since);
    await sleep(1);
  }
  return spans;
}

describe('the dead-man’s switch', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const groups: string[] = [];
  const runs: ReturnType<typeof startRedline>[] = [];
  // the group the cgroup attack makes outside the subject's (it holds the daemon for a while)
  const mount = findCgroupV2Mount() ?? '/nonexistent';
  const foreign = join(mount, `redline-deadman-test-${process.pid}`);
  after(async () => {
    // a daemon a failed test left in the foreign group goes home first: it is no subject to kill
    try {
      writeFileSync(join(foreign, 'cgroup.freeze'), '0');
      for (const pid of readFileSync(join(foreign, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) writeFileSync(join(mount, 'cgroup.procs'), pid);
    } catch {
      // never made, or already gone
    }
    // (a daemon a failed test left stopped could not hear its SIGTERM)
    for (const r of runs) {
      if (r.child.pid && /^[Tt]$/.test(stateOf(r.child.pid))) process.kill(r.child.pid, 'SIGCONT');
      await stopRedline(r, 10_000);
    }
    try {
      rmdirSync(foreign);
    } catch {
      // never made, or removed by the test
    }
    for (const g of groups) await sweepGroup(g);
    tmp.cleanup();
  });

  /** starts a trial of `agent` (enforce unless said); resolves once the watchdog is up, with the monitor's pids */
  async function trial(name: string, agent: string, extra: string[] = [], mode = 'enforce') {
    const log = join(tmp.dir, `${name}.ndjson`);
    const d = startRedline(['exec', '--mode', mode, '--log', log, '--socket', 'off', ...extra, '--', 'sh', '-c', agent], { REDLINE_GUARD: 'off' });
    runs.push(d);
    const wd = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'watchdog', 30_000);
    // (the trial's start follows once the host's facts are in, up to a second later)
    const start = await waitForRecord(log, (r) => r.kind === 'trial' && r.phase === 'start', 30_000);
    const recs = readLog(log);
    const daemon = recs.find((r) => r.kind === 'daemon' && r.phase === 'start') as LogRecord;
    const sensor = recs.find((r) => r.kind === 'daemon' && r.phase === 'sensor' && r.sensor === 'ebpf') as LogRecord;
    groups.push(String(start.cgroup));
    return { d, log, group: String(start.cgroup), daemon: daemon.daemon_pid as number, watchdog: wd.watchdog_pid as number, sensor: (sensor.sensor_pids as number[])[0] as number };
  }

  /**
   * An observe trial whose agent waits for the monitor's pids (in the file `go`: $D, $S),
   * attacks, stamps the time into $AT (unless the attack does), then copies the weights.
   */
  async function attackThenCopy(name: string, attack: string, stamps = false) {
    const weights = join(tmp.dir, `${name}-model.safetensors`);
    writeFileSync(weights, randomBytes(40 * 65536));
    const go = join(tmp.dir, `${name}-go`);
    const at = join(tmp.dir, `${name}-at`);
    const out = join(tmp.dir, `${name}-copy.bin`);
    // observe: the agent is never frozen, so what it does after the attack is there to be seen
    const agent = `AT=${at}; while [ ! -e ${go} ]; do sleep 0.02; done; read D S < ${go}; ${attack}; ${stamps ? '' : 'date +%s%N > $AT; '}cp ${weights} ${out}; sleep 1`;
    const t = await trial(name, agent, ['--weights', weights], 'observe');
    const cgroup = readFileSync(`/proc/${t.daemon}/cgroup`, 'utf8');
    writeFileSync(`${go}.tmp`, `${t.daemon} ${t.sensor}\n`);
    renameSync(`${go}.tmp`, go);
    return { ...t, at, cgroup };
  }

  /** the resume is logged, the copy after it caught, the trial ends tripped with its end record, and the chain verifies */
  async function caughtAfter(t: Awaited<ReturnType<typeof attackThenCopy>>, what: string): Promise<LogRecord> {
    const run = await t.d.done;
    assert.equal(run.code, 3, `exit 3 (tripped): ${run.stderr.slice(-2000)}`);
    const recs = readLog(t.log);
    const resumed = recs.find((r) => r.kind === 'alert' && r.rule === 'redline.monitor-resumed' && r.what === what);
    assert.ok(resumed, `a redline.monitor-resumed alert (${what}): ${JSON.stringify(recs.filter((r) => r.kind === 'alert').map((r) => r.summary))}`);
    assert.equal(resumed.category, 'monitor.tamper');
    assert.equal(resumed.severity, 'critical');
    assert.ok((resumed.resumed_pids as number[]).includes(t.daemon), 'the daemon was freed');
    const copy = recs.find((r) => r.kind === 'alert' && r.category === 'weights.copy');
    assert.ok(copy, 'the copy made after the attack is caught (by a monitor that runs again)');
    assert.equal(recs.some((r) => r.phase === 'lost'), false, 'a held monitor that was freed is no loss');
    const end = recs.find((r) => r.kind === 'trial' && r.phase === 'end');
    assert.ok(end, 'the trial’s end record');
    assert.equal(end.exit_code, 3);
    const audit = await redline(['audit', t.log]);
    assert.equal(audit.code, 0, `the chain is intact: ${audit.stdout}${audit.stderr}`);
    return resumed;
  }

  test('SIGKILL of the daemon mid-trial: the subject is frozen within a second and never acts again; the log verifies and shows the loss', async (tc) => {
    const progress = join(tmp.dir, 'progress');
    const t = await trial('killed', `i=0; while :; do i=$((i+1)); echo $i > ${progress}; sleep 0.02; done`);
    assert.ok(await until(() => existsSync(progress), 5000), 'the agent runs');
    const t0 = performance.now();
    // the daemon, not `redline exec` itself (its supervisor: the harness's process)
    process.kill(t.daemon, 'SIGKILL');
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
    // the daemon never wrote the trial's end: the watchdog did, so the trial is not left open
    const end = readLog(t.log).find((r) => r.kind === 'trial' && r.phase === 'end');
    assert.ok(end, 'a trial end record');
    assert.equal(end.reason, 'monitor-lost');
    assert.equal(end.ended_by, 'watchdog');
    assert.equal(end.frozen, true);
    assert.ok(end.seq > cleanup.seq, 'after the cleanup');
    assert.ok(await until(() => finished(t.watchdog), 3000), 'and the watchdog is done');
    const audit = await redline(['audit', t.log]);
    assert.equal(audit.code, 0, `the chain is intact: ${audit.stdout}${audit.stderr}`);
    assert.match(audit.stdout, /monitor was lost/);
    // the harness's process exits 3 (a lost monitor), never by the daemon's signal
    const run = await t.d.done;
    assert.equal(run.signal, null);
    assert.equal(run.code, 3, run.stderr.slice(-2000));
    assert.match(run.stderr, /the monitor \(pid \d+\) died by SIGKILL; the trial counts as tripped/);
    tc.diagnostic(`daemon SIGKILL → frozen seen ${ms.toFixed(1)} ms`);
  });

  test('SIGSTOP of the daemon and its sensor: both resumed within half a second, the attack logged, the copy right after caught', async (tc) => {
    const t = await attackThenCopy('stopped', 'kill -STOP $D $S');
    const spans = await heldFor(t.at, [t.daemon, t.sensor], (pid) => stateOf(pid) === 'T', 10_000);
    for (const [pid, ms] of spans) assert.ok(ms !== null && ms < 500, `pid ${pid} stopped for ${String(ms)} ms`);
    const resumed = await caughtAfter(t, 'stopped');
    // (one answer for both, or one each when a poll fell between the two stops)
    const all = readLog(t.log).filter((r) => r.rule === 'redline.monitor-resumed');
    assert.deepEqual([...new Set(all.flatMap((r) => r.resumed_pids as number[]))].sort(), [t.daemon, t.sensor].sort(), 'the daemon and its sensor');
    for (const r of all) assert.ok((r.latency_ms as number) < 500, `resumed after ${String(r.latency_ms)} ms`);
    assert.match(String(resumed.summary), /stopped \(SIGSTOP\); the watchdog resumed (it|them) after \d+ ms/);
    tc.diagnostic(`stopped for ${[...spans.values()].map((v) => `${(v ?? NaN).toFixed(1)} ms`).join(', ')} after the kill (seen by /proc); the watchdog's own: ${String(resumed.latency_ms)} ms`);
  });

  test('enforce: the resume is answered with a freeze as well, and the agent never takes its next step', async () => {
    const go = join(tmp.dir, 'enforce-go');
    const next = join(tmp.dir, 'enforce-next');
    const t = await trial('enforce-stop', `while [ ! -e ${go} ]; do sleep 0.02; done; read D S < ${go}; kill -STOP $D $S; sleep 1; touch ${next}`);
    writeFileSync(`${go}.tmp`, `${t.daemon} ${t.sensor}\n`);
    renameSync(`${go}.tmp`, go);
    const run = await t.d.done;
    assert.equal(run.code, 3, run.stderr.slice(-2000));
    const recs = readLog(t.log);
    const resumed = recs.find((r) => r.rule === 'redline.monitor-resumed');
    assert.ok(resumed, 'the resume is logged');
    assert.ok(recs.some((r) => r.kind === 'action' && r.action === 'freeze' && r.cause === 'the monitor was stopped' && r.seq > resumed.seq), 'and answered with a freeze');
    assert.equal(existsSync(next), false, 'the agent never reached its next step');
    assert.equal(recs.some((r) => r.phase === 'lost'), false);
    const audit = await redline(['audit', t.log]);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  });

  test('ptrace: a subject process that seizes and interrupts the daemon is killed, the daemon runs again and sees the copy', async (tc) => {
    const py = join(tmp.dir, 'tracer.py');
    const why = join(tmp.dir, 'tracer.err');
    // PTRACE_SEIZE (0x4206) then PTRACE_INTERRUPT (0x4207): the daemon sits in a trace stop until its tracer lets go or dies
    writeFileSync(py, ['import ctypes, sys, time', 'libc = ctypes.CDLL(None, use_errno=True)', 'libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]', 'pid = int(sys.argv[1])', 'for req in (0x4206, 0x4207):', '    if libc.ptrace(req, pid, None, None) != 0: sys.exit("ptrace %#x: errno %d" % (req, ctypes.get_errno()))', 'open(sys.argv[2], "w").write(str(time.time_ns()))', 'time.sleep(60)', ''].join('\n'));
    // the agent goes on once its tracer is gone (killed by the watchdog)
    const t = await attackThenCopy('traced', `python3 ${py} $D $AT 2>${why} & wait`, true);
    const spans = await heldFor(t.at, [t.daemon], (pid) => stateOf(pid) === 't' || tracerOf(pid) > 0, 10_000);
    const ms = spans.get(t.daemon) ?? null;
    assert.ok(ms !== null && ms < 500, `traced for ${String(ms)} ms`);
    const resumed = await caughtAfter(t, 'traced').catch((err: unknown) => {
      throw new Error(`${String(err)}\ntracer said: ${existsSync(why) ? readFileSync(why, 'utf8') : ''}`);
    });
    const tracer = resumed.tracer as { pid: number; comm: string; cgroup: string | null };
    assert.equal(tracer.comm, 'python3', 'the alert names the tracer');
    assert.equal(tracer.cgroup, t.group, 'in the subject’s group');
    assert.match(String(resumed.summary), new RegExp(`held by ptrace from python3 \\(pid ${tracer.pid}.*killed the tracer`));
    assert.ok(finished(tracer.pid), 'the tracer is dead');
    tc.diagnostic(`traced for ${ms.toFixed(1)} ms after the interrupt (seen by /proc); the watchdog's own: ${String(resumed.latency_ms)} ms`);
  });

  test('cgroup: the daemon moved into a group of the subject’s making and frozen there is thawed and moved back; the copy after is caught', async (tc) => {
    const home = readFileSync('/proc/self/cgroup', 'utf8');
    const t = await attackThenCopy('frozen', `mkdir ${foreign} && echo $D > ${foreign}/cgroup.procs && echo 1 > ${foreign}/cgroup.freeze`);
    const spans = await heldFor(t.at, [t.daemon], (pid) => existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/cgroup`, 'utf8') !== t.cgroup, 10_000);
    const ms = spans.get(t.daemon) ?? null;
    assert.ok(ms !== null && ms < 500, `out of its group for ${String(ms)} ms`);
    const resumed = await caughtAfter(t, 'frozen-cgroup');
    assert.equal(resumed.group, foreign, 'the alert names the group');
    assert.equal(readFileSync(join(foreign, 'cgroup.freeze'), 'utf8').trim(), '0', 'thawed');
    assert.equal(readFileSync(join(foreign, 'cgroup.procs'), 'utf8').trim(), '', 'and emptied');
    assert.equal(readFileSync('/proc/self/cgroup', 'utf8'), home);
    tc.diagnostic(`out of its group for ${ms.toFixed(1)} ms after the freeze (seen by /proc); the watchdog's own: ${String(resumed.latency_ms)} ms`);
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
