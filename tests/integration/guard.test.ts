// The guard, against a subject that is root in its group: the subject's seccomp filter refuses
// its signals, ptrace and bpf() aimed at the monitor (EPERM, asserted from the subject's side),
// each attempt is an alert that names it, and a copy of the weights made right after is still
// caught; in enforce mode a kill of a --protect-pid process and a reboot are refused too. The
// BPF LSM guard is tried where the kernel loads it, and skipped, saying why, where it does not.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LsmGuard, seccompEntry } from '../../daemon/guard/index.js';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel } from '../helpers/model.js';
import { bystander, isAlive, killBystanders } from '../helpers/procs.js';
import { alertsOf, type LogRecord, readLog, redline, ROOT, type Run, startRedline, stopRedline, tempDir, waitForRecord } from '../helpers/redline.js';

const AGENT = join(ROOT, 'tests/fixtures/guard_agent.py');
const skip = monitorSkipReason() ?? (seccompEntry() ? null : 'redline-enter was not built (cc at npm ci) or the host is not x86_64 root');
const EPERM = 1;

interface Said {
  what: string;
  pid?: number;
  sig?: number;
  errno?: number;
}

function said(path: string): Said[] {
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Said) : [];
}

describe('the seccomp guard, observe mode: every attempt on the monitor refused and named; the copy after it caught', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const log = join(tmp.dir, 'guard.ndjson');
  const out = join(tmp.dir, 'said.ndjson');
  let run: Run;
  let recs: LogRecord[] = [];
  let results: Said[] = [];
  let victim = 0;

  before(async () => {
    const model = makeModel(join(tmp.dir, 'model'), 4);
    victim = bystander('other-experiment');
    run = await redline(['exec', '--mode', 'observe', '--weights', model.weights, '--log', log, '--', 'python3', AGENT, 'observe', log, out, model.weights, String(victim)], {}, 90_000);
    recs = readLog(log);
    results = said(out);
  });
  after(() => {
    killBystanders();
    tmp.cleanup();
  });

  test('the trial trips (exit 3), never by a signal, with its end record; the start record says which guard ran', () => {
    assert.equal(run.signal, null);
    assert.equal(run.code, 3, run.stderr);
    assert.ok(recs.some((r) => r.kind === 'trial' && r.phase === 'end'));
    const start = recs.find((r) => r.kind === 'trial' && r.phase === 'start');
    assert.equal(start?.seccomp, true);
    assert.ok(start?.guard === 'kernel' || (start?.guard === 'detect-only' && typeof start.guard_reason === 'string' && start.guard_reason.length > 0), JSON.stringify(start));
  });

  test('SIGSTOP, SIGTERM and SIGKILL of each monitor process fail with EPERM on the subject’s side, and each is a monitor.tamper alert', () => {
    const kills = results.filter((r) => r.what === 'kill');
    const pids = new Set(kills.map((k) => k.pid));
    // the daemon, bpftrace, the loader and the watchdog
    assert.ok(pids.size >= 4, JSON.stringify(results));
    for (const k of kills) assert.equal(k.errno, EPERM, JSON.stringify(k));
    const tamper = alertsOf(recs).filter((a) => a.rule === 'signal-monitor');
    for (const k of kills) {
      assert.ok(tamper.some((a) => (a.target as { pid?: number } | undefined)?.pid === k.pid && new RegExp(`sent SIG\\w+ to the monitor .*pid ${k.pid}\\): the subject's seccomp filter refused it`).test(String(a.summary)) && (a.event as { sig?: number }).sig === k.sig), `no alert for signal ${k.sig} to ${k.pid}`);
    }
  });

  test('ptrace seize of each monitor process and bpf() fail with EPERM, each a monitor.tamper alert naming it', () => {
    const traces = results.filter((r) => r.what === 'ptrace');
    assert.ok(traces.length >= 4);
    for (const t of traces) {
      assert.equal(t.errno, EPERM);
      assert.ok(alertsOf(recs).some((a) => a.rule === 'trace-monitor' && new RegExp(`PTRACE_SEIZE on the monitor .*pid ${t.pid}\\)`).test(String(a.summary))), `no alert for ptrace of ${t.pid}`);
    }
    assert.equal(results.find((r) => r.what === 'bpf')?.errno, EPERM);
    assert.equal(results.find((r) => r.what === 'finit_module')?.errno, EPERM);
    const kernel = alertsOf(recs).filter((a) => a.rule === 'kernel-tamper');
    assert.ok(kernel.some((a) => /called bpf: the kernel refused it \(EPERM\)/.test(String(a.summary))), JSON.stringify(kernel));
    assert.ok(kernel.some((a) => /called finit_module/.test(String(a.summary))));
  });

  test('the log opened through /proc/PID/fd/N and through a hard link: a monitor.tamper alert each (refused where the BPF LSM guard runs)', () => {
    const lsm = recs.find((r) => r.kind === 'trial' && r.phase === 'start')?.guard === 'kernel';
    for (const what of ['fd-open', 'link-open']) {
      const r = results.find((x) => x.what === what);
      assert.ok(r, `${what} was not tried: ${JSON.stringify(results)}`);
      assert.equal(r.errno, lsm ? EPERM : 0);
    }
    const writes = alertsOf(recs).filter((a) => a.rule === 'write-monitor-files');
    assert.ok(writes.some((a) => /\/proc\/\d+\/fd\/\d+ for writing/.test(String(a.summary))), JSON.stringify(writes.map((a) => a.summary)));
    assert.ok(writes.some((a) => /log-link for writing/.test(String(a.summary))));
  });

  test('another experiment’s process killed through ptrace: process.kill names the victim, and observe mode let it happen', () => {
    assert.equal(results.find((r) => r.what === 'ptrace-victim')?.errno, 0);
    const a = alertsOf(recs).find((x) => x.rule === 'trace-outside');
    assert.ok(a, JSON.stringify(alertsOf(recs).map((x) => x.rule)));
    assert.equal(a.category, 'process.kill');
    assert.match(String(a.summary), new RegExp(`on sleep \\(pid ${victim}\\), a process outside its tree`));
    assert.equal(isAlive(victim), false);
    // and the kill itself, which no signal syscall sent: the kernel's SIGKILL for the PTRACE_KILL
    const kill = alertsOf(recs).find((x) => x.rule === 'signal-outside-tree' && (x.event as { syscall?: string }).syscall === 'ptrace');
    assert.ok(kill, JSON.stringify(alertsOf(recs).map((x) => x.summary)));
    assert.equal((kill.target as { pid: number }).pid, victim);
    assert.match(String(kill.summary), new RegExp(`sent SIGKILL to sleep \\(pid ${victim}\\), outside its own tree`));
  });

  test('the copy made right after is caught, and the log verifies', async () => {
    assert.ok(results.some((r) => r.what === 'copied'));
    assert.ok(alertsOf(recs).some((a) => a.category === 'weights.copy'));
    const audit = await redline(['audit', '--json', log]);
    assert.equal(audit.code, 0, audit.stderr);
    const trial = (JSON.parse(audit.stdout) as { trials: { guard: string | null }[] }).trials[0];
    assert.ok(trial?.guard === 'detect-only' || trial?.guard === 'kernel');
  });
});

describe('the seccomp guard, enforce mode: a kill of a protected process and a reboot refused, the subject frozen', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const log = join(tmp.dir, 'enforce.ndjson');
  const out = join(tmp.dir, 'said.ndjson');
  let run: Run;
  let recs: LogRecord[] = [];
  let victim = 0;
  let frozenFirst = false;

  before(async () => {
    victim = bystander('protected-server');
    // held after the freeze, then thawed: the subject writes down what its calls returned (a
    // freeze a millisecond after the first alert would otherwise beat its own report)
    const sock = join(tmp.dir, 'control.sock');
    const d = startRedline(['exec', '--after-trip', 'hold', '--socket', sock, '--protect-pid', String(victim), '--log', log, '--', 'python3', AGENT, 'enforce', log, out, '-', String(victim)]);
    try {
      await waitForRecord(log, (r) => r.kind === 'action' && r.action === 'freeze', 60_000);
      frozenFirst = said(out).length < 2;
      // (the second attempt's alert freezes it again: thawed until it has said both)
      for (let i = 0; i < 40 && said(out).length < 2; i++) {
        const thaw = await redline(['thaw', '--socket', sock]);
        assert.equal(thaw.code, 0, thaw.stderr);
        await new Promise((r) => setTimeout(r, 250));
      }
      await redline(['kill', '--socket', sock]);
      const t = setTimeout(() => d.child.kill('SIGKILL'), 60_000);
      run = await d.done;
      clearTimeout(t);
    } finally {
      await stopRedline(d);
    }
    recs = readLog(log);
  });
  after(() => {
    killBystanders();
    tmp.cleanup();
  });

  test('both calls fail with EPERM on the subject’s side; the protected process lives', () => {
    const results = said(out);
    assert.equal(results.find((r) => r.what === 'kill-protected')?.errno, EPERM, JSON.stringify(results));
    assert.equal(results.find((r) => r.what === 'reboot')?.errno, EPERM);
    assert.equal(isAlive(victim), true);
  });

  test('each is an alert in its category; the subject was frozen before it finished, and the trial exits 3', () => {
    assert.equal(run.code, 3, run.stderr);
    const kill = alertsOf(recs).find((a) => a.rule === 'signal-protected-process');
    assert.ok(kill, JSON.stringify(alertsOf(recs).map((a) => a.rule)));
    assert.match(String(kill.summary), /SIGKILL to protected process .*: the subject's seccomp filter refused it/);
    assert.ok(alertsOf(recs).some((a) => a.category === 'system.reboot' && /refused/.test(String(a.summary))), JSON.stringify(alertsOf(recs).map((a) => a.summary)));
    assert.ok(recs.some((r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true));
    assert.ok(frozenFirst, 'the freeze came before the subject had reported both calls');
  });
});

/** whether the kernel loads the BPF LSM guard here: the reason it does not, or null */
async function lsmSkipReason(): Promise<string | null> {
  if (monitorSkipReason()) return monitorSkipReason();
  try {
    const g = await LsmGuard.start({ kind: 'uid', uid: 0xfffffffe });
    await g.stop();
    return null;
  } catch (err) {
    return `the BPF LSM guard cannot run here: ${(err as Error).message}`;
  }
}

describe('the BPF LSM guard: writes to the monitor’s log and to other groups refused in the kernel', { skip: (await lsmSkipReason()) ?? false }, () => {
  const tmp = tempDir();
  const log = join(tmp.dir, 'lsm.ndjson');
  let run: Run;
  before(async () => {
    const script = [
      'import os, sys',
      'res = {}',
      'for name, path in (("log", sys.argv[1]), ("root-procs", "/sys/fs/cgroup/unified/cgroup.procs" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup/cgroup.procs")):',
      '    try:',
      '        open(path, "a").close(); res[name] = 0',
      '    except OSError as e:',
      '        res[name] = e.errno',
      `open(${JSON.stringify(join(tmp.dir, 'lsm-said.json'))}, "w").write(repr(res))`,
    ].join('\n');
    run = await redline(['exec', '--mode', 'observe', '--log', log, '--', 'python3', '-c', script, log], {}, 60_000);
  });
  after(() => tmp.cleanup());

  test('both opens fail with EPERM, and the start record says guard: kernel', () => {
    assert.equal(readFileSync(join(tmp.dir, 'lsm-said.json'), 'utf8'), "{'log': 1, 'root-procs': 1}", run.stderr);
    assert.equal(readLog(log).find((r) => r.kind === 'trial' && r.phase === 'start')?.guard, 'kernel');
  });
});

describe('the copy gate (enforce mode): a fast cp of a 64 MiB model leaves at most 2 MiB', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const log = join(tmp.dir, 'gate.ndjson');
  let run: Run;
  let recs: LogRecord[] = [];
  let weights = '';
  const sizeOf = (name: string) => (existsSync(join(tmp.dir, name)) ? statSync(join(tmp.dir, name)).size : 0);

  before(async () => {
    weights = makeModel(join(tmp.dir, 'model'), 64).weights;
    // three copiers at once: cp (one copy_file_range), dd of 4 MiB blocks, and a Python loop of 1 MiB writes
    const copy = [
      `cp ${weights} ${join(tmp.dir, 'cp.bin')} &`,
      `dd if=${weights} of=${join(tmp.dir, 'dd.bin')} bs=4M 2>/dev/null &`,
      `python3 -c 'import sys,time; s=open(sys.argv[1],"rb"); d=open(sys.argv[2],"wb")\nwhile True:\n  b=s.read(1<<20)\n  if not b: break\n  d.write(b); d.flush(); time.sleep(0.005)' ${weights} ${join(tmp.dir, 'py.bin')} &`,
      'wait',
    ].join('\n');
    run = await redline(['exec', '--weights', weights, '--log', log, '--', 'sh', '-c', copy], {}, 90_000);
    recs = readLog(log);
  });
  after(() => tmp.cleanup());

  test('the trial trips and freezes; cp is cut at its copy_file_range, the writers held at their first MiB', () => {
    assert.equal(run.code, 3, run.stderr);
    assert.ok(recs.some((r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true));
    assert.ok(recs.some((r) => r.kind === 'daemon' && r.phase === 'gate' && r.on === true));
    const cut = alertsOf(recs).find((a) => a.rule === 'copy-cut');
    assert.ok(cut, JSON.stringify(alertsOf(recs).map((a) => a.summary)));
    assert.match(String(cut.summary), /^cp \(pid \d+\) began copying the weights .* in one copy_file_range call/);
  });

  test('on disk: cp ≤ 2 MiB, the 1 MiB writer ≤ 2 MiB, dd one 4 MiB block at most', () => {
    const MiB = 1 << 20;
    assert.ok(sizeOf('cp.bin') <= 2 * MiB, `cp left ${sizeOf('cp.bin')} bytes`);
    assert.ok(sizeOf('py.bin') <= 2 * MiB, `the Python loop left ${sizeOf('py.bin')} bytes`);
    assert.ok(sizeOf('dd.bin') <= 4 * MiB, `dd left ${sizeOf('dd.bin')} bytes`);
  });
});

describe('fail closed: no trial without a watchdog in enforce mode', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('exec whose watchdog cannot start exits 2, says why, and never starts the subject', async () => {
    const marker = join(tmp.dir, 'ran');
    const r = await redline(['exec', '--log', join(tmp.dir, 'wd.ndjson'), '--', 'touch', marker], { REDLINE_TEST_FAULT: 'watchdog' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /the watchdog could not start .* exec starts no trial without one/);
    assert.equal(existsSync(marker), false);
    const recs = readLog(join(tmp.dir, 'wd.ndjson'));
    assert.ok(recs.some((x) => x.kind === 'daemon' && x.phase === 'watchdog' && x.watchdog_pid === null));
    assert.equal(recs.some((x) => x.kind === 'trial' && x.phase === 'start'), false);
  });

  test('run whose watchdog cannot start exits 2 in enforce mode, says why; observe mode runs on and alerts', async () => {
    const log = join(tmp.dir, 'run-wd.ndjson');
    const r = await redline(['run', '--subject-uid', '64998', '--log', log, '--socket', 'off', '--ws', 'off'], { REDLINE_TEST_FAULT: 'watchdog' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /the watchdog could not start .* run does not start without one/);
    const observe = join(tmp.dir, 'run-wd-observe.ndjson');
    const d = startRedline(['run', '--mode', 'observe', '--subject-uid', '64998', '--log', observe, '--socket', 'off', '--ws', 'off'], { REDLINE_TEST_FAULT: 'watchdog' });
    try {
      const a = await waitForRecord(observe, (x) => x.kind === 'alert' && x.rule === 'redline.watchdog-failed', 30_000);
      assert.equal(a.category, 'monitor.degraded');
    } finally {
      await stopRedline(d);
    }
  });
});
