// The error funnel: a sensor handler, a rule helper, an alert listener or the snapshot that
// throws never ends the daemon. Each becomes a monitor.degraded alert (once per distinct
// error), enforce mode freezes a real cgroup for it, and a later freeze is not wedged.
// Last, a real daemon with an error nothing catches freezes its subject before it exits.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { findCgroupV2Mount, groupPids, readEvents, removeGroup } from '../../daemon/cgroup.js';
import { nowMs } from '../../daemon/clock.js';
import { loadRules } from '../../daemon/engine/load.js';
import type { Ruleset } from '../../daemon/engine/ruleset.js';
import type { SensorEvent } from '../../daemon/events.js';
import { Pipeline, type PipelineOptions, type RecordSink, type Stages } from '../../daemon/pipeline.js';
import { ProcessTable } from '../../daemon/process-table.js';
import type { Subject } from '../../daemon/subject.js';
import { cgroupSkipReason, monitorSkipReason } from '../helpers/host.js';
import { alertsOf, readLog, redline, ROOT, tempDir } from '../helpers/redline.js';

class MemorySink implements RecordSink {
  records: ({ kind: string } & Record<string, unknown>)[] = [];
  append(fields: { kind: string } & Record<string, unknown>) {
    this.records.push(fields);
    return { seq: this.records.length - 1, hash: '' };
  }
  alerts(rule?: string) {
    return this.records.filter((r) => r.kind === 'alert' && (rule === undefined || r.rule === rule));
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, ms = 3000): Promise<boolean> {
  const t0 = Date.now();
  while (!pred() && Date.now() - t0 < ms) await pause(10);
  return pred();
}

function killGroup(path: string): void {
  try {
    writeFileSync(join(path, 'cgroup.freeze'), '0');
  } catch {
    // gone already
  }
  for (const pid of groupPids(path)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited
    }
  }
  const t0 = Date.now();
  while (groupPids(path).length > 0 && Date.now() - t0 < 2000);
  removeGroup(path);
}

describe('the error funnel on a pipeline over a real cgroup', { skip: cgroupSkipReason() ?? false }, () => {
  const mount = findCgroupV2Mount() ?? '';
  const path = join(mount, 'redline', `test-funnel-${process.pid}`);
  const subject: Subject = { kind: 'cgroup2', path, mount };
  const tmp = tempDir('redline-funnel-');
  let shipped: Ruleset;
  let withBadHelper: Ruleset;
  let withOpenRule: Ruleset;
  let subjectPid = 0;

  before(async () => {
    shipped = loadRules([join(ROOT, 'rules')]).ruleset as Ruleset;
    // a rule whose helper (CEL's int()) throws on every exec: a rule bug found at run time
    const bad = join(tmp.dir, 'bad-helper.yaml');
    writeFileSync(
      bad,
      [
        '- rule: comm-number',
        '  description: a rule whose helper fails on every process name that is not a number',
        '  category: process.detach',
        '  severity: low',
        '  events: [exec]',
        '  condition: int(proc.comm) > 0',
        '  summary: "{proc.comm}"',
        '',
      ].join('\n'),
    );
    const res = loadRules([join(ROOT, 'rules'), bad]);
    assert.ok(res.ruleset, res.errors.map((e) => e.message).join('; '));
    withBadHelper = res.ruleset;
    const open = join(tmp.dir, 'open-rule.yaml');
    writeFileSync(open, ['- rule: open-hostname', '  description: a subject process opened /etc/hostname', '  category: weights.read', '  severity: low', '  events: [open]', "  condition: evt.path == '/etc/hostname'", '  summary: "{evt.path}"', '  dedup: false', ''].join('\n'));
    withOpenRule = loadRules([join(ROOT, 'rules'), open]).ruleset as Ruleset;
    mkdirSync(path, { recursive: true });
    const c = spawn('/bin/sh', ['-c', `echo $$ > ${path}/cgroup.procs; exec sleep 60`], { stdio: 'ignore', detached: true });
    await until(() => groupPids(path).length > 0 || c.exitCode !== null);
    subjectPid = groupPids(path)[0] ?? 0;
    assert.ok(subjectPid > 0, 'the subject process is in its group');
  });
  afterEach(() => {
    try {
      writeFileSync(join(path, 'cgroup.freeze'), '0');
    } catch {
      // removed already
    }
  });
  after(() => {
    killGroup(path);
    tmp.cleanup();
  });

  const make = (mode: 'observe' | 'enforce', o: { stages?: Stages; ruleset?: Ruleset; snapshot?: PipelineOptions['snapshot'] } = {}) => {
    const sink = new MemorySink();
    const table = new ProcessTable({ isSubject: (pid) => groupPids(path).includes(pid), monitorPids: [process.pid] });
    const p = new Pipeline({ table, ruleset: o.ruleset ?? shipped, subject, sink, mode, ...(o.stages ? { stages: o.stages } : {}), ...(o.snapshot ? { snapshot: o.snapshot } : {}) });
    return { sink, p };
  };
  const openEv = (): SensorEvent => ({ type: 'open', time: nowMs(), pid: subjectPid, comm: 'sleep', fd: 3, flags: 0, dfd: -100, filename: '/etc/hostname', write: false });
  // a subject process signalling the daemon: the shipped signal-monitor rule (critical, freeze)
  const tamper = (): SensorEvent => ({ type: 'signal', time: nowMs(), pid: subjectPid, comm: 'sleep', syscall: 'kill', target_pid: process.pid, sig: 15 });
  const throwingWeights = (): Stages => ({
    weights: {
      observe: () => {
        throw new TypeError('weights sensor broke');
      },
      observeBytes: () => [],
      concerns: () => false,
      connected: () => undefined,
      listened: () => [],
      exited: () => [],
    },
  });

  test('a sensor handler that throws: the daemon goes on, one high monitor.degraded alert, the subject frozen (enforce)', async () => {
    const { sink, p } = make('enforce', { stages: throwingWeights(), ruleset: withOpenRule });
    assert.doesNotThrow(() => p.ingest(openEv()));
    assert.doesNotThrow(() => p.ingest(openEv()));
    // the sensor's failure does not keep the event from the rules
    assert.equal(sink.alerts('open-hostname').length, 2);
    const errs = sink.alerts('redline.internal-error');
    assert.equal(errs.length, 1, 'reported once per distinct error');
    assert.equal(errs[0]?.category, 'monitor.degraded');
    assert.equal(errs[0]?.severity, 'high');
    assert.match(String(errs[0]?.summary), /weights sensor broke/);
    assert.ok(await until(() => readEvents(path).frozen === 1), 'the subject is frozen');
    assert.ok(await until(() => sink.records.some((r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true && r.cause === 'redline.internal-error')));
    // still watching: the next event is judged by the rules
    p.ingest(tamper());
    assert.equal(sink.alerts('signal-monitor').length, 1);
  });

  test('in observe mode the same error is an alert, and the subject runs on', async () => {
    const { sink, p } = make('observe', { stages: throwingWeights() });
    p.ingest(openEv());
    assert.equal(sink.alerts('redline.internal-error').length, 1);
    await pause(100);
    assert.equal(readEvents(path).frozen, 0);
  });

  test('a rule helper that throws: a high monitor.degraded alert and a freeze (enforce); other rules still judge', async () => {
    const { sink, p } = make('enforce', { ruleset: withBadHelper });
    const exec: SensorEvent = { type: 'exec', time: nowMs(), pid: subjectPid, comm: 'sleep', filename: '/bin/sleep' };
    p.ingest(exec);
    p.ingest({ ...exec, time: nowMs() });
    const errs = sink.alerts('redline.rule-eval-error');
    assert.equal(errs.length, 1, 'once per distinct error');
    assert.equal(errs[0]?.severity, 'high');
    assert.match(String(errs[0]?.summary), /comm-number/);
    assert.ok(await until(() => readEvents(path).frozen === 1), 'the subject is frozen');
    p.ingest(tamper());
    assert.equal(sink.alerts('signal-monitor').length, 1);
  });

  test('an alert listener that throws: the freeze is carried out, the other listeners hear the alert, the error is logged', async () => {
    const { sink, p } = make('enforce');
    const heard: string[] = [];
    let n = 0;
    // a new message each time: the alert about it must not feed the listener without end
    p.on('alert', () => {
      throw new Error(`a listener broke (${++n})`);
    });
    p.on('alert', (a: { rule: string }) => heard.push(a.rule));
    assert.doesNotThrow(() => p.ingest(tamper()));
    assert.ok(heard.includes('signal-monitor'), 'the second listener heard the alert');
    assert.equal(sink.alerts('redline.internal-error').length, 1);
    assert.match(String(sink.alerts('redline.internal-error')[0]?.summary), /alert listener: a listener broke \(1\)/);
    assert.ok(await until(() => readEvents(path).frozen === 1), 'the subject is frozen');
  });

  test('a throw in the snapshot does not stop the next freeze', async () => {
    let calls = 0;
    const { sink, p } = make('enforce', {
      snapshot: () => {
        calls++;
        if (calls === 1) throw new Error('snapshot broke');
        return { processes: [], latency_ms: 0 };
      },
    });
    const first = await p.operatorFreeze('test');
    assert.equal(first.ok, true);
    assert.equal(readEvents(path).frozen, 1);
    assert.equal(sink.alerts('redline.internal-error').length, 1, 'the failed snapshot is reported');
    await p.operatorThaw('test');
    assert.equal(readEvents(path).frozen, 0);
    const second = await p.operatorFreeze('test again');
    assert.equal(second.ok, true);
    assert.equal(readEvents(path).frozen, 1, 'frozen again');
    assert.ok(sink.records.some((r) => r.kind === 'snapshot' && r.cause === 'test again'));
  });
});

describe('a daemon with an error nothing catches', { skip: monitorSkipReason() ?? false }, () => {
  const mount = findCgroupV2Mount() ?? '';
  const tmp = tempDir('redline-crash-');
  const groups: string[] = [];
  after(() => {
    for (const g of groups) killGroup(g);
    tmp.cleanup();
  });

  test('a rule that throws at run time: the trial goes on to its end, the alert is logged, the subject was frozen', async () => {
    const bad = join(tmp.dir, 'bad-helper.yaml');
    writeFileSync(bad, ['- rule: comm-number', '  description: fails on every name that is not a number', '  category: process.detach', '  severity: low', '  events: [exec]', '  condition: int(proc.comm) > 0', '  summary: "{proc.comm}"', ''].join('\n'));
    const log = join(tmp.dir, 'rule-throws.ndjson');
    const run = await redline(['exec', '--mode', 'enforce', '--rules', join(ROOT, 'rules'), '--rules', bad, '--log', log, '--socket', 'off', '--', 'sh', '-c', 'sleep 0.5; /bin/true; sleep 5'], {}, 60_000);
    assert.equal(run.code, 3, run.stderr);
    const recs = readLog(log);
    const err = alertsOf(recs).find((a) => a.rule === 'redline.rule-eval-error');
    assert.ok(err, 'the rule error is an alert');
    assert.equal(err.severity, 'high');
    assert.ok(recs.some((r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true && r.cause === 'redline.rule-eval-error'), 'the subject was frozen for it');
    assert.ok(recs.some((r) => r.kind === 'trial' && r.phase === 'end'), 'the daemon ran on to the end of the trial');
    assert.equal(recs.at(-1)?.phase, 'stop');
  });

  for (const mode of ['enforce', 'observe'] as const) {
    test(`${mode}: the last record says why it stopped${mode === 'enforce' ? ', and the subject is left frozen' : ''}`, async () => {
      const trial = `crash-${mode}-${process.pid}`;
      const group = join(mount, 'redline', trial);
      groups.push(group);
      const log = join(tmp.dir, `${trial}.ndjson`);
      // the subject's output goes elsewhere: a subject left frozen would hold the test's pipes open
      const run = await redline(['exec', '--mode', mode, '--trial', trial, '--log', log, '--socket', 'off', '--', 'sh', '-c', 'exec sleep 30 </dev/null >/dev/null 2>&1'], { REDLINE_TEST_FAULT: 'uncaught', REDLINE_TEST_FAULT_MS: '500' }, 40_000);
      // CONTRACT.md: exec exits 3 when an alert ≥ high was written (the crash alert is critical)
      assert.equal(run.code, 3, run.stderr);
      const recs = readLog(log);
      const crash = alertsOf(recs).find((a) => a.rule === 'redline.crashed');
      assert.ok(crash, 'a crash alert is logged');
      assert.equal(crash.category, 'monitor.degraded');
      const last = recs.at(-1);
      assert.equal(last?.kind, 'daemon');
      assert.equal(last?.phase, 'crash');
      assert.match(String(last?.error), /REDLINE_TEST_FAULT/);
      if (mode === 'enforce') {
        assert.equal(last?.subject_frozen, true);
        assert.equal(readEvents(group).frozen, 1, 'the subject is still frozen after the daemon is gone');
        assert.ok(groupPids(group).length > 0, 'with its evidence intact');
      } else {
        assert.equal(last?.subject_frozen, false);
        assert.equal(readEvents(group).frozen, 0);
      }
    });
  }
});
