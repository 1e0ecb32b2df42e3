import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { diffApps, type DiffOptions } from '../../daemon/sensors/gpu/diff.js';
import { type ComputeApp, parseComputeApps, parseGpus } from '../../daemon/sensors/gpu/parse.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/nvidia-smi/${name}`, import.meta.url), 'utf8');
const G0 = 'GPU-0c6a4b1e-1f6d-4c39-9d47-5d0e1b2c3a4f';
const G1 = 'GPU-9b2e7f10-44c1-2d6a-b8e3-0f5a6c7d8e9b';

function records<T>(r: { ok: true; records: T[] } | { ok: false; error: string }): T[] {
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.records;
}

test('one GPU with one server', () => {
  assert.deepEqual(records(parseGpus(fixture('gpus-1.csv'))), [{ index: 0, uuid: 'GPU-5d8e4d8a-3a2b-0c34-6e2f-1b8e2f9a7c11', used_mib: 40523, total_mib: 81559 }]);
  assert.deepEqual(records(parseComputeApps(fixture('apps-1.csv'))), [{ pid: 2841, used_mib: 40506, gpu_uuid: 'GPU-5d8e4d8a-3a2b-0c34-6e2f-1b8e2f9a7c11' }]);
});

test('two GPUs, one of them idle: listed with no apps', () => {
  const gpus = records(parseGpus(fixture('gpus-2.csv')));
  assert.deepEqual(gpus.map((g) => [g.index, g.uuid, g.used_mib]), [[0, G0, 71234], [1, G1, 4]]);
  const apps = records(parseComputeApps(fixture('apps-2.csv')));
  assert.deepEqual(apps.map((a) => a.pid), [2841, 3907]);
  assert.ok(apps.every((a) => a.gpu_uuid === G0));
});

test('a sharded server is one pid listed once per GPU', () => {
  const apps = records(parseComputeApps(fixture('apps-2-sharded.csv')));
  assert.deepEqual(apps, [{ pid: 2841, used_mib: 20096, gpu_uuid: G0 }, { pid: 2841, used_mib: 20096, gpu_uuid: G1 }]);
});

test('[N/A] and [Not Supported] are unknown values, not errors', () => {
  assert.deepEqual(records(parseGpus(fixture('gpus-na.csv'))), [{ index: 0, uuid: 'GPU-5d8e4d8a-3a2b-0c34-6e2f-1b8e2f9a7c11', used_mib: null, total_mib: null }]);
  assert.deepEqual(records(parseComputeApps(fixture('apps-na.csv'))).map((a) => [a.pid, a.used_mib]), [[2841, null], [3907, null]]);
  assert.deepEqual(records(parseComputeApps('[N/A], 100, GPU-1\n')), [{ pid: null, used_mib: 100, gpu_uuid: 'GPU-1' }]);
});

test('no processes: empty output or the driver’s sentence', () => {
  assert.deepEqual(records(parseComputeApps(fixture('empty.csv'))), []);
  assert.deepEqual(records(parseComputeApps(fixture('apps-none.txt'))), []);
  assert.deepEqual(records(parseComputeApps('No running compute processes found\r\n')), []);
  assert.deepEqual(records(parseGpus(fixture('empty.csv'))), []);
});

test('CRLF and stray spaces are tolerated', () => {
  assert.deepEqual(records(parseComputeApps('2841 ,  512 , GPU-1 \r\n')), [{ pid: 2841, used_mib: 512, gpu_uuid: 'GPU-1' }]);
});

test('garbage is an error naming the line, never a throw', () => {
  const cases: [string, (t: string) => { ok: boolean }][] = [
    ['garbage-random.txt', parseComputeApps],
    ['garbage-random.txt', parseGpus],
    ['garbage-nvml.txt', parseComputeApps],
    ['garbage-nvml.txt', parseGpus],
    ['apps-truncated.csv', parseComputeApps],
    ['apps-with-header.csv', parseComputeApps],
    // the other query's rows are not this query's
    ['gpus-1.csv', parseComputeApps],
    ['apps-1.csv', parseGpus],
  ];
  for (const [name, parse] of cases) {
    const r = parse(fixture(name));
    assert.equal(r.ok, false, name);
  }
  const t = parseComputeApps(fixture('apps-truncated.csv'));
  assert.ok(!t.ok);
  assert.match(t.error, /^line 2: expected 3 fields/);
  const h = parseComputeApps(fixture('apps-with-header.csv'));
  assert.ok(!h.ok);
  assert.match(h.error, /line 1: pid is not a process id/);
  const n = parseGpus(fixture('no-devices.txt'));
  assert.deepEqual(n, { ok: false, error: 'nvidia-smi found no GPUs' });
  assert.equal(parseComputeApps('\u0000\u00ff\n').ok, false);
  assert.equal(parseComputeApps('0, 5, GPU-1').ok, false);
  assert.equal(parseComputeApps('-4, 5, GPU-1').ok, false);
  assert.equal(parseComputeApps('4, 5, not-a-uuid').ok, false);
});

const opts = (allow: number[] = [2841], over: Partial<DiffOptions> = {}): DiffOptions => ({ changeMib: 256, replicaShare: 0.5, allowPids: new Set(allow), ...over });
const app = (pid: number, used_mib: number | null, gpu_uuid = G0): ComputeApp => ({ pid, used_mib, gpu_uuid });
const gpus = records(parseGpus(fixture('gpus-2.csv')));

test('each new pid is news, measured against the allowed server', () => {
  const d = diffApps(new Map(), records(parseComputeApps(fixture('apps-2.csv'))), gpus, opts(), 1000);
  assert.deepEqual(d.events, [
    { type: 'gpu', time: 1000, pid: 2841, gpu_uuid: G0, used_mib: 38020, previous_mib: 0, footprint_mib: 38020, allowed_mib: 38020, replica_like: false, total_mib: 81559 },
    { type: 'gpu', time: 1000, pid: 3907, gpu_uuid: G0, used_mib: 33190, previous_mib: 0, footprint_mib: 33190, allowed_mib: 38020, replica_like: true, total_mib: 81559 },
  ]);
});

test('small moves are not news, large ones are, from the last reported value', () => {
  let d = diffApps(new Map(), [app(7, 1000)], gpus, opts([]), 0);
  assert.equal(d.events.length, 1);
  assert.equal(d.events[0]?.replica_like, false, 'no allowed server on a GPU: nothing to be like');
  d = diffApps(d.reported, [app(7, 1200)], gpus, opts([]), 1);
  assert.equal(d.events.length, 0);
  // creeping up in small steps still adds up against what was last reported
  d = diffApps(d.reported, [app(7, 1300)], gpus, opts([]), 2);
  assert.deepEqual(d.events.map((e) => [e.used_mib, e.previous_mib]), [[1300, 1000]]);
  d = diffApps(d.reported, [app(7, 900)], gpus, opts([]), 3);
  assert.deepEqual(d.events.map((e) => [e.used_mib, e.previous_mib]), [[900, 1300]]);
});

test('a pid that left the GPU and came back is new again', () => {
  let d = diffApps(new Map(), [app(7, 1000)], gpus, opts([]), 0);
  d = diffApps(d.reported, [], gpus, opts([]), 1);
  assert.equal(d.events.length, 0);
  d = diffApps(d.reported, [app(7, 1000)], gpus, opts([]), 2);
  assert.equal(d.events[0]?.previous_mib, 0);
});

test('footprints add up over GPUs on both sides', () => {
  // 24000 MiB over two GPUs against 40192: like the original at 55 %, though each shard alone (12000) is not
  const apps = [...records(parseComputeApps(fixture('apps-2-sharded.csv'))), app(50, 12000, G0), app(50, 12000, G1)];
  const d = diffApps(new Map(), apps, gpus, opts([2841], { replicaShare: 0.55 }), 0);
  const replica = d.events.filter((e) => e.pid === 50);
  assert.equal(replica.length, 2);
  assert.ok(replica.every((e) => e.allowed_mib === 40192 && e.footprint_mib === 24000 && e.replica_like));
});

test('unknown usage is reported once, flagged, as 0 MiB', () => {
  const d = diffApps(new Map(), [app(9, null)], gpus, opts(), 0);
  assert.deepEqual(d.events.map((e) => [e.used_mib, e.used_unknown]), [[0, true]]);
  assert.equal(diffApps(d.reported, [app(9, null)], gpus, opts(), 1).events.length, 0);
});
