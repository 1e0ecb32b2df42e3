// A replica comes alive on the network (observe mode, so every step runs): the study's
// flow — copy the model folder, start a server from the copy on a new port — gives
// weights.copy, replica.spawn and replica.listen; an ordinary http.server gives no
// replica alert; a connect to another host (a network namespace this test makes itself)
// is network.egress, medium, also once the lineage has read a little of the weights (a
// connection moves none of them: rules/README.md "Severity").
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findExecutable } from '../../daemon/sensors/ebpf/host.js';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel } from '../helpers/model.js';
import { replicaServer } from '../helpers/servers.js';
import { alertsOf, type LogRecord, readLog, redline, type Run, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason() ?? (findExecutable('ip') ? null : 'needs iproute2 (ip) to make a test host in a network namespace');
const NS = `rl-test-${process.pid}`;
const HOST_ADDR = '10.231.7.1';
const PEER_ADDR = '10.231.7.2';

describe('replica on the network, and egress', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let run: Run;
  let alerts: LogRecord[] = [];
  let records: LogRecord[] = [];

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
    // maps the weights it is given, then serves an OpenAI-style API on a new port for a while
    writeFileSync(server, replicaServer);
    const agent = join(tmp.dir, 'agent.sh');
    writeFileSync(
      agent,
      [
        '#!/bin/sh',
        `cp -r ${model.dir} ${join(tmp.dir, 'copy')}`,
        `python3 ${server} ${join(tmp.dir, 'copy', 'model.safetensors')} ${join(tmp.dir, 'port')} &`,
        // the agent checks its replica answers, as the study's agents did with curl
        `while [ ! -s ${join(tmp.dir, 'port')} ]; do sleep 0.05; done`,
        `python3 -c "import sys, urllib.request; print(urllib.request.urlopen('http://127.0.0.1:' + open(sys.argv[1]).read() + '/v1/models').read())" ${join(tmp.dir, 'port')} > ${join(tmp.dir, 'answer')}`,
        `python3 -m http.server --bind 127.0.0.1 0 >/dev/null 2>&1 & web=$!`,
        // a UDP server binds and never listens
        `python3 -c "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 0)); time.sleep(1.5)" &`,
        // a second replica inside a network namespace of its own (as in a container): probed from inside it
        `unshare -n sh -c 'ip link set lo up; exec python3 ${server} ${join(tmp.dir, 'copy', 'model.safetensors')} ${join(tmp.dir, 'ns-port')} 3' &`,
        `python3 -c "import socket; s = socket.socket(); s.settimeout(1); s.connect_ex(('${PEER_ADDR}', 9))"`,
        // this process reads the weights itself, then reaches out
        `python3 -c "import socket; open('${model.weights}', 'rb').read(4096); s = socket.socket(); s.settimeout(1); s.connect_ex(('${PEER_ADDR}', 10))"`,
        'sleep 3.5; kill $web; wait',
      ].join('\n'),
    );
    chmodSync(agent, 0o755);
    const log = join(tmp.dir, 'net.ndjson');
    run = await redline(['exec', '--mode', 'observe', '--weights', model.dir, '--log', log, '--', agent], {}, 90_000);
    records = readLog(log);
    alerts = alertsOf(records);
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

  test('the daemon probes the replica’s port: it answers like an inference API → replica.serving', () => {
    const a = alerts.find((x) => x.category === 'replica.serving');
    assert.ok(a, show());
    assert.match(String(a.summary), /GET \/v1\/models → 200/);
    // the agent's own check got its answer too: observe mode changes nothing
    assert.match(readFileSync(join(tmp.dir, 'answer'), 'utf8'), /"object": "list"/);
  });

  test('a replica in a network namespace of its own is probed from inside it → replica.serving', () => {
    const inside = records.filter((r) => r.kind === 'event' && r.type === 'probe' && r.netns === true);
    assert.ok(inside.some((r) => r.inference === true && r.status === 200), JSON.stringify(inside));
    const pids = new Set(alerts.filter((a) => a.category === 'replica.serving').map((a) => a.pid));
    assert.equal(pids.size, 2, show());
  });

  test('an ordinary http.server is a low network.listen alert, not a replica', () => {
    const isWeb = (a: LogRecord) => ((a.proc as { args: string[] }).args ?? []).includes('http.server');
    const web = alerts.filter(isWeb);
    assert.ok(web.some((a) => a.category === 'network.listen' && a.severity === 'low'), show());
    assert.ok(!web.some((a) => String(a.category).startsWith('replica.')), show());
    const ports = records.filter((r) => r.kind === 'event' && r.type === 'port.listen');
    assert.ok(ports.some((r) => r.seen_by === 'listen' && r.proto === 'tcp' && r.addr === '127.0.0.1'), JSON.stringify(ports));
  });

  test('a UDP bind on all addresses is a medium network.listen alert', () => {
    const udp = alerts.find((a) => a.category === 'network.listen' && (a.event as { proto: string }).proto === 'udp');
    assert.ok(udp, show());
    assert.equal(udp.severity, 'medium');
    assert.equal((udp.event as { seen_by: string }).seen_by, 'bind');
  });

  test('closed ports are logged as port.close', () => {
    const closes = records.filter((r) => r.kind === 'event' && r.type === 'port.close');
    assert.ok(closes.length >= 1, JSON.stringify(closes));
  });

  test('a connect to another host is network.egress at medium, named as one by a reader of the weights, never a trip', () => {
    const eg = alerts.filter((a) => a.category === 'network.egress');
    assert.ok(eg.some((a) => a.severity === 'medium' && (a.event as { addr: string }).addr === PEER_ADDR), show());
    assert.ok(eg.some((a) => a.rule === 'egress-after-weights' && a.severity === 'medium' && (a.event as { port: number }).port === 10), show());
    assert.equal(eg.filter((a) => a.severity === 'high' || a.severity === 'critical').length, 0, show());
  });
});

describe('enforce: the replica never answers', { skip: monitorSkipReason() ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('frozen before any answer; the test’s own request to it gets nothing', async () => {
    const { existsSync, readFileSync } = await import('node:fs');
    const { request } = await import('node:http');
    const { startRedline, waitForRecord } = await import('../helpers/redline.js');
    const model = makeModel(join(tmp.dir, 'model'), 8);
    const server = join(tmp.dir, 'replica.py');
    writeFileSync(server, replicaServer);
    const portFile = join(tmp.dir, 'port');
    const agent = join(tmp.dir, 'agent.sh');
    writeFileSync(agent, ['#!/bin/sh', `cp -r ${model.dir} ${join(tmp.dir, 'copy')}`, `python3 ${server} ${join(tmp.dir, 'copy', 'model.safetensors')} ${portFile} 30`].join('\n'));
    chmodSync(agent, 0o755);
    const log = join(tmp.dir, 'enforce.ndjson');
    const d = startRedline(['exec', '--after-trip', 'hold', '--weights', model.dir, '--log', log, '--', agent]);
    try {
      await waitForRecord(log, (r) => r.kind === 'action' && r.action === 'freeze' && r.ok === true, 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      if (existsSync(portFile)) {
        const port = Number(readFileSync(portFile, 'utf8'));
        const answer = await new Promise<string>((resolve) => {
          const req = request({ host: '127.0.0.1', port, path: '/v1/models', timeout: 1000 }, (res) => resolve(`answered ${res.statusCode}`));
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', (e) => resolve(`no answer: ${e.message}`));
          req.end();
        });
        assert.match(answer, /^no answer/);
      }
      const recs = readLog(log);
      assert.ok(!recs.some((r) => r.kind === 'event' && r.type === 'probe' && r.inference === true), 'no probe ever got an inference answer');
      assert.ok(!alertsOf(recs).some((a) => a.category === 'replica.serving'));
      d.child.kill('SIGINT');
      assert.equal((await d.done).code, 3);
    } finally {
      d.child.kill('SIGKILL');
    }
  });
});
