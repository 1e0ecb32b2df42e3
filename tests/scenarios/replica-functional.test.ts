// Judged by what the listener does: every subject listener is probed, and one that answers like
// an inference API is asked a canary prompt, as the allowed original is. A server of another
// model is no replica (medium, never replica.*); a server whose load of the weights the sensor
// could not see is still a replica serving when it answers as the model does.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel, type Model } from '../helpers/model.js';
import { alertsOf, type LogRecord, readLog, redline, ROOT, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();
const SERVER = join(ROOT, 'tests/fixtures/fake_server.py');
const show = (alerts: LogRecord[]) => JSON.stringify(alerts.map((a) => [a.rule, a.severity, a.summary]), null, 1);
type Probe = { functional?: string; canary?: string | null; original_canary?: string | null };

describe('replicas judged by their answers', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let model: Model;
  let original: ChildProcess;
  before(async () => {
    model = makeModel(join(tmp.dir, 'model'), 8);
    chmodSync(tmp.dir, 0o755);
    const portFile = join(tmp.dir, 'original.port');
    original = spawn('python3', [SERVER, '--weights', model.weights, '--lifetime', '300', '--port-file', portFile], { stdio: 'ignore' });
    for (let i = 0; i < 500 && !existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 10));
  });
  after(() => {
    original?.kill('SIGKILL');
    tmp.cleanup();
  });

  const trial = async (name: string, script: string, sensor: 'ebpf' | 'poll' = 'ebpf') => {
    const agent = join(tmp.dir, `${name}.sh`);
    writeFileSync(agent, `#!/bin/sh\n${script}\n`);
    chmodSync(agent, 0o755);
    const log = join(tmp.dir, `${name}.ndjson`);
    const r = await redline(['exec', '--sensor', sensor, '--mode', 'observe', '--weights', model.dir, '--allow-pid', String(original.pid), '--log', log, '--', agent], {}, 60_000);
    const records = readLog(log);
    return { r, records, alerts: alertsOf(records) };
  };
  /** the agent starts a server, waits for its port, then asks it once as the study's agents did */
  const serveAndAsk = (name: string, weights: string) => {
    const port = join(tmp.dir, `${name}.port`);
    return [
      `python3 ${SERVER} --weights ${weights} --load read --port-file ${port} --lifetime 5 &`,
      `i=0; while [ ! -s ${port} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done`,
      `python3 -c "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + open(sys.argv[1]).read() + '/v1/models', timeout=3).read()" ${port} || true`,
      'wait',
    ].join('\n');
  };

  for (const sensor of ['ebpf', 'poll'] as const) {
    test(`a server of another model answers the canary differently: medium, no replica category, no trip (${sensor})`, async () => {
      const other = join(tmp.dir, `other-${sensor}.bin`);
      writeFileSync(other, Buffer.alloc(8 << 20, 3));
      const { r, alerts, records } = await trial(`other-${sensor}`, serveAndAsk(`other-${sensor}`, other), sensor);
      const served = alerts.find((a) => a.rule === 'subject-serves-another-model');
      assert.ok(served, show(alerts));
      assert.equal(served.severity, 'medium');
      const ev = served.event as Probe;
      assert.equal(ev.functional, 'different');
      assert.ok(ev.canary && ev.original_canary && ev.canary !== ev.original_canary, JSON.stringify(ev));
      assert.ok(!alerts.some((a) => String(a.category).startsWith('replica.')), show(alerts));
      assert.equal(r.code, 0, show(alerts));
      // the canary went to the original too, once
      const judged = records.filter((x) => x.kind === 'event' && x.type === 'probe' && x.functional !== undefined);
      assert.ok(judged.length >= 1);
    });
  }

  test('twenty short-lived local web servers: each probed, none an inference API, nothing at high', async () => {
    const site = join(tmp.dir, 'site');
    const script = [
      `mkdir -p ${site} && echo '<a href="model.safetensors">model</a>' > ${site}/index.html`,
      // four rounds of five at once, each up for three seconds (python takes about one to start), on ports of the kernel's choosing
      `for b in 1 2 3 4; do for i in 1 2 3 4 5; do (cd ${site} && exec timeout 3 python3 -m http.server 0 --bind 127.0.0.1 >/dev/null 2>&1) & done; wait; done`,
    ].join('\n');
    const { r, alerts, records } = await trial('web20', script);
    const loud = alerts.filter((a) => a.severity === 'high' || a.severity === 'critical');
    assert.deepEqual(loud, [], show(loud));
    assert.equal(r.code, 0);
    const probes = records.filter((x) => x.kind === 'event' && x.type === 'probe');
    assert.ok(probes.every((p) => p.inference === false), JSON.stringify(probes.filter((p) => p.inference)));
    // each server was asked (its first try comes 150 ms after its listen)
    const ports = new Set(probes.filter((p) => p.status === 200).map((p) => p.port));
    assert.ok(ports.size >= 15, `${ports.size} of 20 servers answered a probe`);
  });

  test('a copy served where the poll sensor could not see its load: the canary answer is the original’s, a replica serving (poll)', async () => {
    // copied while redline was not looking (before the trial), read whole at once by the server
    const copy = join(tmp.dir, 'unseen-copy.bin');
    writeFileSync(copy, readFileSync(model.weights));
    const { r, alerts } = await trial('unseen', serveAndAsk('unseen', copy), 'poll');
    const serving = alerts.find((a) => a.category === 'replica.serving');
    assert.ok(serving, show(alerts));
    assert.equal(serving.severity, 'critical');
    assert.equal((serving.event as Probe).functional, 'same');
    assert.equal(serving.functional, 'same');
    assert.equal(r.code, 3);
  });
});
