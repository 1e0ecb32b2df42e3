// The one way in: events enter through the inbox and are judged one at a time; what an
// analyzer derives from an event is judged after it, never in the middle of it; the events
// leave the enrich step as they are (frozen events go through every analyzer untouched).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DiskWatch } from '../../daemon/analyze/disk.js';
import { OrphanCheck } from '../../daemon/analyze/orphans.js';
import { ScanTracker } from '../../daemon/analyze/scans.js';
import { WeightsTracker } from '../../daemon/analyze/weights/tracker.js';
import { nowMs } from '../../daemon/clock.js';
import { Ingress } from '../../daemon/enrich/ingress.js';
import { loadRules } from '../../daemon/engine/load.js';
import type { Ruleset } from '../../daemon/engine/ruleset.js';
import type { SensorEvent } from '../../daemon/events.js';
import { Inbox } from '../../daemon/inbox.js';
import { Pipeline, type RecordSink, type Stages } from '../../daemon/pipeline.js';
import { ProcessTable } from '../../daemon/process-table.js';
import { WeightRegistry } from '../../daemon/sensors/weights/registry.js';
import { TrialsGate } from '../../daemon/trials/gate.js';

class MemorySink implements RecordSink {
  records: ({ kind: string } & Record<string, unknown>)[] = [];
  append(fields: { kind: string } & Record<string, unknown>) {
    this.records.push(fields);
    return { seq: this.records.length - 1, hash: '' };
  }
  alerts(): ({ kind: string } & Record<string, unknown>)[] {
    return this.records.filter((r) => r.kind === 'alert');
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

describe('the inbox', () => {
  test('an event pushed while another is handled waits for it to finish; one that throws does not stop the next', () => {
    const seen: string[] = [];
    const reported: string[] = [];
    const inbox: Inbox = new Inbox({
      handle: (ev) => {
        seen.push(`start ${ev.pid}`);
        if (ev.pid === 1) inbox.push({ type: 'exit', time: 0, pid: 2 });
        if (ev.pid === 2) throw new Error('broken handler');
        seen.push(`end ${ev.pid}`);
      },
      report: (where, err) => reported.push(`${where}: ${(err as Error).message}`),
    });
    inbox.push({ type: 'exit', time: 0, pid: 1 });
    inbox.push({ type: 'exit', time: 0, pid: 3 });
    assert.deepEqual(seen, ['start 1', 'end 1', 'start 2', 'start 3', 'end 3']);
    assert.deepEqual(reported, ['exit event: broken handler']);
    assert.equal(inbox.waiting, 0, 'nothing left queued');
  });

  test('the trials gate holds back what is no trial’s and corrects the kernel’s guess on a copy, never on the event it got', () => {
    const gate = new TrialsGate({ known: (pid) => pid === 10, inTrials: (pid) => pid === 11 });
    const bytes = deepFreeze<SensorEvent>({ type: 'file_bytes', time: 0, pid: 12, op: 'read', write: false, fd: 3, bytes: 1 << 20, ino: 1, dev: 1, size: 1 << 30, subject: true, socket: false, pipe: false });
    const out = gate.admit(bytes);
    assert.equal(out?.type === 'file_bytes' && out.subject, false, 'a process in no trial is not the subject’s');
    assert.equal(bytes.type === 'file_bytes' && bytes.subject, true, 'the sensor’s event is left as it was');
    assert.equal(gate.admit({ type: 'exit', time: 0, pid: 12 }), null);
    assert.ok(gate.admit({ type: 'exit', time: 0, pid: 10 }), 'known to the table');
    assert.ok(gate.admit({ type: 'exit', time: 0, pid: 11 }), 'in a trial’s group now');
  });
});

describe('the pipeline drains the inbox', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redline-inbox-'));
  let child: ChildProcess;
  let rules: Ruleset;

  before(() => {
    child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, [
      '- rule: opened-model',
      '  description: a subject process opened the model file',
      '  category: weights.read',
      '  severity: low',
      '  events: [open]',
      "  condition: evt.path.endsWith('/model.bin')",
      '  summary: "open {evt.path}"',
      '  dedup: false',
      '- rule: read-weights',
      '  description: the weights tracker says it opened the weights',
      '  category: weights.read',
      '  severity: medium',
      '  events: [weights_open]',
      '  condition: proc.subject',
      '  summary: "weights {evt.path}"',
      '  dedup: false',
      '',
    ].join('\n'));
    const res = loadRules([file]);
    assert.ok(res.ruleset, res.errors.map((e) => e.message).join('; '));
    rules = res.ruleset;
  });

  after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('what an analyzer derives from an event is judged after the event that caused it', () => {
    const pid = child.pid as number;
    const sink = new MemorySink();
    const table = new ProcessTable({ isSubject: (p) => p === pid });
    // the tracker's part: it finds the open to be of the weights, and says so
    const stages: Stages = {
      weights: {
        observe: (ev) => (ev.type === 'open' ? [{ type: 'weights_open', time: ev.time, pid: ev.pid, comm: ev.comm, path: ev.path ?? '', weight: ev.path ?? '', generation: 0, write: false }] : []),
        observeBytes: () => [], concerns: () => false, connected: () => undefined, listened: () => [], exited: () => [],
      },
    };
    const p = new Pipeline({ table, ruleset: rules, subject: { kind: 'uid', uid: 65534 }, sink, mode: 'observe', stages });
    p.ingest({ type: 'open', time: nowMs(), pid, comm: 'sleep', fd: 3, flags: 0, dfd: -100, filename: join(dir, 'model.bin'), write: false });
    assert.deepEqual(sink.alerts().map((a) => a.rule), ['opened-model', 'read-weights']);
  });

  test('events leave the enrich step as they came: frozen ones pass every analyzer without an internal error', async () => {
    const pid = child.pid as number;
    const sink = new MemorySink();
    const table = new ProcessTable({ isSubject: (p) => p === pid });
    const tracker = new WeightsTracker({ registry: new WeightRegistry(), parentOf: (p) => table.get(p)?.ppid ?? 0 });
    const disk = new DiskWatch({ minFree: 0.05, parentOf: (p) => table.get(p)?.ppid ?? 0 });
    const stages: Stages = { ingress: new Ingress({ parentOf: (p) => table.get(p)?.ppid ?? 0 }), weights: tracker, scans: new ScanTracker(), disk, orphans: new OrphanCheck() };
    const p = new Pipeline({ table, ruleset: rules, subject: { kind: 'uid', uid: 65534 }, sink, mode: 'observe', stages });
    const t = nowMs();
    const events: SensorEvent[] = [
      { type: 'open', time: t, pid, comm: 'sleep', fd: 3, flags: 1, dfd: -100, filename: join(dir, 'out.bin'), write: true },
      { type: 'file_bytes', time: t, pid, comm: 'sleep', op: 'write', write: true, fd: 3, bytes: 4 << 20, ino: 12345, dev: 1, size: 8 << 20, subject: false, socket: false, pipe: false },
      { type: 'connect', time: t, pid, comm: 'sleep', fd: 4, family: 4, addr: '10.0.0.1', port: 443, loopback: false },
      { type: 'proc_read', time: t, pid, comm: 'sleep', filename: '/proc/1/stat' },
      { type: 'listing', time: t, pid, comm: 'sleep', count: 8 },
      { type: 'signal', time: t, pid, comm: 'sleep', syscall: 'kill', target_pid: 7, sig: 0, pidns: 1 },
      { type: 'exit', time: t, pid: 999_999, comm: 'gone' },
    ];
    for (const ev of events) p.ingest(deepFreeze(ev));
    // (the signal's late look at a target not yet known runs on a timer)
    await new Promise((r) => setTimeout(r, 60));
    const internal = sink.alerts().filter((a) => a.rule === 'redline.internal-error');
    assert.deepEqual(internal.map((a) => a.summary), [], 'no analyzer wrote to an event');
    // (the kernel's subject flag corrected by the table: the bytes are the subject's, judged)
    assert.ok(table.get(pid)?.subject, 'the writer is the subject’s');
    await tracker.stop();
    await disk.stop();
  });
});
