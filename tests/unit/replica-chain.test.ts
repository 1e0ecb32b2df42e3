// Replica generations on the real process table and the shipped rules: a replica the
// subject starts is generation 1, one a replica starts is generation 2, and the chain alert
// carries the generation and the count of replicas alive. The pids are above any kernel's
// pid_max, so /proc never knows them and the table works from the events alone.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadRules } from '../../daemon/engine/load.js';
import type { SensorEvent } from '../../daemon/events.js';
import { Pipeline } from '../../daemon/pipeline.js';
import { ProcessTable } from '../../daemon/process-table.js';

const RULES = join(import.meta.dirname, '..', '..', 'rules');
const AGENT = 5_000_001;
const SERVER1 = 5_000_002;
const HELPER = 5_000_003;
const SERVER2 = 5_000_004;

function setup(allowPids: number[] = []) {
  const loaded = loadRules([RULES]);
  assert.ok(loaded.ruleset, JSON.stringify(loaded.errors));
  const table = new ProcessTable({ isSubject: () => true, keepExitedMs: 10, allowPids });
  const records: Record<string, unknown>[] = [];
  const sink = { append: (r: Record<string, unknown>) => (records.push(r), { seq: records.length - 1, hash: '' }) };
  const pipeline = new Pipeline({ table, ruleset: loaded.ruleset, subject: { kind: 'uid', uid: 0 }, sink, mode: 'observe' });
  const alerts = () => records.filter((r) => r.kind === 'alert');
  return { table, pipeline, alerts };
}

let t = 1_000;
const fork = (pid: number, child: number): SensorEvent => ({ type: 'fork', time: t++, pid, child_pid: child, comm: 'sh' });
const load = (pid: number, weight: string, generation: number): SensorEvent => ({ type: 'weights_load', time: t++, pid, comm: 'python3', path: weight, weight: '/models/m.safetensors', generation, how: 'mmap', bytes: 8, share: 1 });
const copy = (pid: number, path: string, generation: number): SensorEvent => ({ type: 'weights_copy', time: t++, pid, comm: 'cp', path, weight: '/models/m.safetensors', generation, match: 'full', bytes: 8, offset: 0, seen_by: 'ebpf' });

describe('replica generations', () => {
  test('the subject’s replica is generation 1 and raises no chain alert', () => {
    const { table, pipeline, alerts } = setup();
    pipeline.handle(fork(AGENT, SERVER1));
    pipeline.handle(load(SERVER1, '/tmp/c1/m.safetensors', 1));
    assert.equal(table.get(SERVER1)?.replicaGen, 1);
    assert.ok(alerts().some((a) => a.category === 'replica.spawn'));
    assert.ok(!alerts().some((a) => a.category === 'replica.chain'), JSON.stringify(alerts()));
  });

  test('a replica’s child that copies the copy and serves it: replica.chain with generation 2 and 2 live replicas', () => {
    const { table, pipeline, alerts } = setup();
    pipeline.handle(fork(AGENT, SERVER1));
    pipeline.handle(load(SERVER1, '/tmp/c1/m.safetensors', 1));
    pipeline.handle(fork(SERVER1, HELPER));
    // the helper inherits "replica" from its parent, but has not loaded anything itself
    assert.equal(table.liveReplicas(), 1);
    pipeline.handle(copy(HELPER, '/tmp/c2/m.safetensors', 2));
    const byCopy = alerts().find((a) => a.rule === 'replica-copies-copy');
    assert.ok(byCopy, JSON.stringify(alerts()));
    assert.equal(byCopy.generation, 2);
    assert.equal(byCopy.live_replicas, 1);
    pipeline.handle(fork(HELPER, SERVER2));
    pipeline.handle(load(SERVER2, '/tmp/c2/m.safetensors', 2));
    const chain = alerts().find((a) => a.rule === 'replica-starts-replica');
    assert.ok(chain, JSON.stringify(alerts()));
    assert.equal(chain.category, 'replica.chain');
    assert.equal(chain.severity, 'critical');
    assert.equal(chain.generation, 2);
    assert.equal(chain.live_replicas, 2);
    assert.match(String(chain.summary), /generation 2.*2 replicas alive/);
  });

  test('generation 3, and exited replicas no longer count as alive', () => {
    const { table, pipeline, alerts } = setup();
    pipeline.handle(fork(AGENT, SERVER1));
    pipeline.handle(load(SERVER1, '/tmp/c1/m', 1));
    pipeline.handle(fork(SERVER1, SERVER2));
    pipeline.handle(load(SERVER2, '/tmp/c1/m', 1));
    pipeline.handle({ type: 'exit', time: t++, pid: SERVER1, comm: 'python3' });
    pipeline.handle(fork(SERVER2, HELPER));
    pipeline.handle(load(HELPER, '/tmp/c1/m', 1));
    assert.equal(table.get(HELPER)?.replicaGen, 3);
    const last = alerts().filter((a) => a.category === 'replica.chain').at(-1);
    assert.equal(last?.generation, 3);
    assert.equal(last?.live_replicas, 2);
  });

  test('a copy of a copy made by the subject itself, with no replica behind it, stays weights.copy', () => {
    const { pipeline, alerts } = setup();
    pipeline.handle(fork(AGENT, HELPER));
    pipeline.handle(copy(HELPER, '/tmp/c2/m', 2));
    assert.ok(alerts().some((a) => a.category === 'weights.copy' && a.generation === 2));
    assert.ok(!alerts().some((a) => a.category === 'replica.chain'));
  });

  test('the allowed server loading the weights (outside the subject) is no replica and no alert, and is not counted alive', () => {
    // a real process (this one), so the table reads it from /proc and keeps it
    const ORIGINAL = process.pid;
    const { table, pipeline, alerts } = setup([ORIGINAL]);
    pipeline.handle({ type: 'weights_load', time: t++, pid: ORIGINAL, comm: 'python3', path: '/models/m.safetensors', weight: '/models/m.safetensors', generation: 0, how: 'mmap', bytes: 8, share: 1, outside_subject: true });
    assert.equal(table.get(ORIGINAL)?.replica, false);
    assert.deepEqual(alerts(), []);
    pipeline.handle(fork(AGENT, SERVER1));
    pipeline.handle(load(SERVER1, '/tmp/c1/m.safetensors', 1));
    const spawn = alerts().find((a) => a.category === 'replica.spawn');
    assert.equal(spawn?.live_replicas, 1);
  });
});
