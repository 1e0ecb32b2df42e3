// The monitor's own trouble is judged by rules/monitor.yaml, not by constants in code: which
// sensor's trouble is high, medium or low, which fails closed, and a site may change it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadRules } from '../../daemon/engine/load.js';
import type { Ruleset } from '../../daemon/engine/ruleset.js';
import { Pipeline, type RecordSink } from '../../daemon/pipeline.js';
import { ProcessTable } from '../../daemon/process-table.js';
import type { SensorTrouble } from '../../daemon/sensors/sensor.js';
import { ROOT, tempDir } from '../helpers/redline.js';

class MemorySink implements RecordSink {
  records: ({ kind: string } & Record<string, unknown>)[] = [];
  append(fields: { kind: string } & Record<string, unknown>) {
    this.records.push(fields);
    return { seq: this.records.length - 1, hash: '' };
  }
}

const shipped = loadRules([join(ROOT, 'rules')]).ruleset as Ruleset;

// observe mode and a uid nobody has: nothing here can freeze a real process
function trouble(t: SensorTrouble, o: { ruleset?: Ruleset; failClosed?: boolean } = {}) {
  const sink = new MemorySink();
  const p = new Pipeline({ table: new ProcessTable({ isSubject: () => false, monitorPids: [process.pid] }), ruleset: o.ruleset ?? shipped, subject: { kind: 'uid', uid: 4294967294 }, sink, mode: 'observe', failClosed: o.failClosed ?? false });
  p.sensorTrouble(t);
  return { alerts: sink.records.filter((r) => r.kind === 'alert'), actions: sink.records.filter((r) => r.kind === 'action') };
}

describe('rules/monitor.yaml judges sensor trouble', () => {
  const tmp = tempDir('redline-monitor-rules-');
  after(() => tmp.cleanup());

  test('losing a sensor that sees processes, weights or ports is high; a GPU or folder-watch hiccup is medium; a warning is low', () => {
    const cases: [SensorTrouble, string, string][] = [
      [{ sensor: 'ebpf', reason: 'died', detail: 'bpftrace exited' }, 'redline.sensor-died', 'high'],
      [{ sensor: 'ebpf', reason: 'lost-events', detail: 'lost 3', lost: 3 }, 'redline.sensor-lost-events', 'high'],
      [{ sensor: 'ebpf', reason: 'garbage', detail: 'a line could not be handled' }, 'redline.sensor-blind', 'high'],
      [{ sensor: 'gpu', reason: 'timeout', detail: 'nvidia-smi hangs' }, 'redline.sensor-timeout', 'medium'],
      [{ sensor: 'gpu', reason: 'garbage', detail: 'unreadable' }, 'redline.sensor-garbage', 'medium'],
      [{ sensor: 'gpu', reason: 'failed', detail: 'a listener threw' }, 'redline.sensor-failed', 'medium'],
      [{ sensor: 'watch', reason: 'stderr', detail: 'EMFILE' }, 'redline.sensor-stderr', 'low'],
    ];
    for (const [t, rule, severity] of cases) {
      const { alerts } = trouble(t);
      assert.equal(alerts.length, 1, `${t.sensor} ${t.reason}: one alert`);
      assert.equal(alerts[0]?.rule, rule);
      assert.equal(alerts[0]?.severity, severity, rule);
      assert.equal(alerts[0]?.category, 'monitor.degraded');
      assert.equal(alerts[0]?.sensor, t.sensor);
    }
  });

  test('with --fail-closed the high ones ask for a freeze (recorded as skipped in observe mode); without it, none', () => {
    const died: SensorTrouble = { sensor: 'ebpf', reason: 'died', detail: 'bpftrace exited' };
    assert.deepEqual(trouble(died).actions, []);
    const closed = trouble(died, { failClosed: true }).actions;
    assert.equal(closed.length, 1);
    assert.equal(closed[0]?.action, 'freeze');
    assert.equal(closed[0]?.skipped, true);
    assert.equal(closed[0]?.cause, 'redline.sensor-died');
    // a dimmed view does not fail closed
    assert.deepEqual(trouble({ sensor: 'gpu', reason: 'timeout', detail: 'hangs' }, { failClosed: true }).actions, []);
  });

  test('a site changes the decision in its own rule file: a warning turned off, a GPU timeout made to fail closed', () => {
    const site = join(tmp.dir, 'site.yaml');
    writeFileSync(
      site,
      [
        '- rule: redline.sensor-stderr',
        '  enabled: false',
        '- rule: site.gpu-blind',
        '  description: on this host the GPU view is the one that matters',
        '  category: monitor.degraded',
        '  severity: high',
        '  events: [sensor_trouble]',
        "  condition: evt.sensor == 'gpu' && evt.reason == 'timeout' && evt.fail_closed",
        '  summary: "{evt.sensor}: {evt.detail}"',
        '  actions: [fail-closed]',
        '  dedup: false',
        '',
      ].join('\n'),
    );
    const res = loadRules([join(ROOT, 'rules'), site]);
    assert.ok(res.ruleset, res.errors.map((e) => e.message).join('; '));
    assert.deepEqual(trouble({ sensor: 'watch', reason: 'stderr', detail: 'EMFILE' }, { ruleset: res.ruleset }).alerts, []);
    const gpu = trouble({ sensor: 'gpu', reason: 'timeout', detail: 'hangs' }, { ruleset: res.ruleset, failClosed: true });
    assert.deepEqual(gpu.alerts.map((a) => a.rule).sort(), ['redline.sensor-timeout', 'site.gpu-blind']);
    assert.equal(gpu.actions[0]?.cause, 'site.gpu-blind');
  });
});
