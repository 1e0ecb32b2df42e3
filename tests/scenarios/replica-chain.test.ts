// A chain of replication (observe mode, so every step runs): the agent copies the model and
// starts a replica from the copy; that replica's child copies the copy and starts a second
// replica from it. Both the copy of the copy and the second replica are replica.chain with
// generation 2, and the alert counts the replicas alive.
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel } from '../helpers/model.js';
import { alertsOf, type LogRecord, readLog, redline, type Run, tempDir } from '../helpers/redline.js';
import { replicaServer } from '../helpers/servers.js';

describe('a replica starts a replica', { skip: monitorSkipReason() ?? false }, () => {
  const tmp = tempDir();
  let run: Run;
  let alerts: LogRecord[] = [];

  before(async () => {
    const model = makeModel(join(tmp.dir, 'model'), 8);
    const server = join(tmp.dir, 'server.py');
    writeFileSync(server, replicaServer);
    const c1 = join(tmp.dir, 'c1');
    const c2 = join(tmp.dir, 'c2');
    const child = join(tmp.dir, 'child.sh');
    writeFileSync(child, ['#!/bin/sh', `cp -r ${c1} ${c2}`, `exec python3 ${server} ${join(c2, 'model.safetensors')} ${join(tmp.dir, 'p2')} 2`].join('\n'));
    const agent = join(tmp.dir, 'agent.sh');
    writeFileSync(agent, ['#!/bin/sh', `cp -r ${model.dir} ${c1}`, `python3 ${server} ${join(c1, 'model.safetensors')} ${join(tmp.dir, 'p1')} 1 sh ${child}`].join('\n'));
    chmodSync(agent, 0o755);
    const log = join(tmp.dir, 'chain.ndjson');
    run = await redline(['exec', '--mode', 'observe', '--weights', model.dir, '--log', log, '--', agent], {}, 90_000);
    alerts = alertsOf(readLog(log));
  });
  after(() => (process.env.KEEP ? undefined : tmp.cleanup()));

  const show = () => JSON.stringify(alerts.map((a) => [a.rule, a.summary]), null, 1);

  test('the first replica is generation 1: replica.spawn, no chain from it', () => {
    assert.equal(run.code, 3, run.stderr);
    const spawns = alerts.filter((a) => a.category === 'replica.spawn');
    assert.equal(spawns.length, 2, show());
    assert.equal(spawns[0]?.generation, 1);
  });

  test('the replica’s child copies the copy → replica.chain, generation 2', () => {
    const a = alerts.find((x) => x.rule === 'replica-copies-copy');
    assert.ok(a, show());
    assert.equal(a.category, 'replica.chain');
    assert.equal(a.generation, 2);
    assert.match(String((a.event as { path: string }).path), /\/c2\//);
    // a copy looked at again once complete is not a hard link of itself (a third generation)
    assert.ok(!alerts.some((x) => (x.generation as number) > 2), show());
  });

  test('the second replica → replica.chain, generation 2, with 2 replicas alive', () => {
    const a = alerts.find((x) => x.rule === 'replica-starts-replica');
    assert.ok(a, show());
    assert.equal(a.category, 'replica.chain');
    assert.equal(a.severity, 'critical');
    assert.equal(a.generation, 2);
    assert.equal(a.live_replicas, 2);
    assert.match(String(a.summary), /generation 2/);
  });

  test('both replicas’ ports are replica.listen', () => {
    const pids = new Set(alerts.filter((a) => a.category === 'replica.listen').map((a) => a.pid));
    assert.equal(pids.size, 2, show());
  });
});
