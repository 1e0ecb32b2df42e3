// A replica comes alive on the network (observe mode, so every step runs): the study's
// flow — copy the model folder, start a server from the copy on a new port — gives
// weights.copy, replica.spawn and replica.listen; an ordinary http.server gives no
// replica alert; a connect to another host (a network namespace this test makes itself)
// is network.egress, high once the lineage has read the weights.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findExecutable } from '../../daemon/sensors/ebpf/host.js';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel } from '../helpers/model.js';
import { alertsOf, type LogRecord, readLog, redline, type Run, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason() ?? (findExecutable('ip') ? null : 'needs iproute2 (ip) to make a test host in a network namespace');
const NS = `rl-test-${process.pid}`;
const HOST_ADDR = '10.231.7.1';
const PEER_ADDR = '10.231.7.2';

describe('replica on the network, and egress', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let run: Run;
  let alerts: LogRecord[] = [];

  before(async () => {
    // the "other host": a namespace of our own behind a veth pair
    execFileSync('ip', ['netns', 'add', NS]);
    execFileSync('ip', ['link', 'add', `rlh${process.pid % 10000}`, 'type', 'veth', 'peer', 'name', 'rlpeer', 'netns', NS]);
    execFileSync('ip', ['addr', 'add', `${HOST_ADDR}/30`, 'dev', `rlh${process.pid % 10000}`]);
    execFileSync('ip', ['link', 'set', `rlh${process.pid % 10000}`, 'up']);
    execFileSync('ip', ['-n', NS, 'addr', 'add', `${PEER_ADDR}/30`, 'dev', 'rlpeer']);
    execFileSync('ip', ['-n', NS, 'link', 'set', 'rlpeer', 'up']);

    const model = makeModel(join(tmp.dir, 'model'), 8);
    const server = join(tmp.dir, 'replica.py');
    // maps the weights it is given, then serves on a new port
    writeFileSync(
      server,
      ['import mmap, socket, sys, time', 'f = open(sys.argv[1], "rb")', 'm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)', 's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()', 'time.sleep(2)'].join('\n'),
    );
    const agent = join(tmp.dir, 'agent.sh');
    writeFileSync(
      agent,
      [
        '#!/bin/sh',
        `cp -r ${model.dir} ${join(tmp.dir, 'copy')}`,
        `python3 ${server} ${join(tmp.dir, 'copy', 'model.safetensors')} &`,
        `python3 -m http.server --bind 127.0.0.1 0 >/dev/null 2>&1 & web=$!`,
        `python3 -c "import socket; s = socket.socket(); s.settimeout(1); s.connect_ex(('${PEER_ADDR}', 9))"`,
        // this process reads the weights itself, then reaches out
        `python3 -c "import socket; open('${model.weights}', 'rb').read(4096); s = socket.socket(); s.settimeout(1); s.connect_ex(('${PEER_ADDR}', 10))"`,
        'sleep 2.5; kill $web; wait',
      ].join('\n'),
    );
    chmodSync(agent, 0o755);
    const log = join(tmp.dir, 'net.ndjson');
    run = await redline(['exec', '--mode', 'observe', '--weights', model.dir, '--log', log, '--', agent], {}, 90_000);
    alerts = alertsOf(readLog(log));
  });
  after(() => {
    try {
      execFileSync('ip', ['link', 'del', `rlh${process.pid % 10000}`]);
    } catch {
      // gone with the namespace
    }
    execFileSync('ip', ['netns', 'del', NS]);
    tmp.cleanup();
  });

  const show = () => JSON.stringify(alerts.map((a) => [a.rule, a.summary]), null, 1);

  test('copy → replica.spawn (mmap of the copy) → replica.listen with its port', () => {
    assert.equal(run.code, 3, run.stderr);
    assert.ok(alerts.some((a) => a.category === 'weights.copy'), show());
    assert.ok(alerts.some((a) => a.category === 'replica.spawn'), show());
    const l = alerts.find((a) => a.category === 'replica.listen');
    assert.ok(l, show());
    assert.equal((l.event as { addr: string }).addr, '127.0.0.1');
    assert.ok(((l.event as { port: number }).port ?? 0) > 0);
    assert.equal(l.severity, 'critical');
  });

  test('an ordinary http.server is not a replica', () => {
    const listens = alerts.filter((a) => a.category === 'replica.listen');
    assert.equal(listens.length, 1, show());
  });

  test('a connect to another host is network.egress: medium, then high once the lineage read the weights', () => {
    const eg = alerts.filter((a) => a.category === 'network.egress');
    assert.ok(eg.some((a) => a.severity === 'medium' && (a.event as { addr: string }).addr === PEER_ADDR), show());
    assert.ok(eg.some((a) => a.severity === 'high' && (a.event as { port: number }).port === 10), show());
  });
});
