// A real inference engine: llama.cpp (through node-llama-cpp, its prebuilt CPU binary)
// serving a tiny GGUF generated here, memory-mapped and with mmap off (the weights read into
// memory). The agent copies the model and serves the copy; redline must see the copy, the
// load by its bytes whatever the read path, and the replica answering, and in enforce mode
// freeze it before it answers anything.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeTinyGguf } from '../helpers/gguf.js';
import { monitorSkipReason } from '../helpers/host.js';
import { alertsOf, type LogRecord, readLog, redline, ROOT, tempDir } from '../helpers/redline.js';

const SERVER = join(ROOT, 'tests', 'fixtures', 'llama_server.mjs');

function llamaSkipReason(): string | null {
  try {
    createRequire(import.meta.url).resolve('node-llama-cpp');
    return null;
  } catch {
    return 'needs node-llama-cpp (a devDependency: npm ci)';
  }
}

const skip = monitorSkipReason() ?? llamaSkipReason();
type Ev = { path?: string; how?: string; bytes?: number; share?: number; match?: string };
const ev = (a: LogRecord) => a.event as Ev;
const show = (alerts: LogRecord[]) => JSON.stringify(alerts.filter((a) => a.category !== 'monitor.degraded').map((a) => [a.rule, a.summary]), null, 1);

describe('a real llama.cpp replica', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const modelDir = () => join(tmp.dir, 'model');
  before(() => {
    mkdirSync(modelDir(), { recursive: true });
    writeTinyGguf(join(modelDir(), 'tiny.gguf'));
  });
  after(() => tmp.cleanup());

  const trial = async (name: string, mmap: boolean, mode: 'observe' | 'enforce') => {
    const copy = join(tmp.dir, `${name}-copy`);
    const portFile = join(tmp.dir, `${name}.port`);
    const agent = join(tmp.dir, `${name}.sh`);
    writeFileSync(agent, ['#!/bin/sh', `cp -r ${modelDir()} ${copy}`, `exec ${process.execPath} ${SERVER} ${join(copy, 'tiny.gguf')} ${portFile} ${mmap ? 1 : 0} 10`].join('\n'));
    chmodSync(agent, 0o755);
    const log = join(tmp.dir, `${name}.ndjson`);
    const r = await redline(['exec', '--mode', mode, '--weights', modelDir(), '--log', log, '--', agent], {}, 90_000);
    return { r, alerts: alertsOf(readLog(log)), portFile, copy };
  };

  for (const mmap of [true, false]) {
    test(`observe, ${mmap ? 'mmap' : 'mmap off'}: the copy, the load by its bytes, and the replica serving`, async () => {
      const { r, alerts, copy } = await trial(mmap ? 'mmap' : 'nommap', mmap, 'observe');
      assert.equal(r.code, 3, r.stderr);
      assert.ok(alerts.some((a) => a.category === 'weights.copy' && ev(a).path === join(copy, 'tiny.gguf')), show(alerts));
      const load = alerts.find((a) => a.rule === 'replica-loads-weights');
      assert.ok(load, show(alerts));
      assert.equal(ev(load).path, join(copy, 'tiny.gguf'));
      if (mmap) assert.ok(ev(load).how === 'mmap' || ev(load).how === 'mixed', JSON.stringify(load.event));
      // read into memory: llama.cpp's read() and the GGUF header parser's positional reads
      else assert.ok(['read', 'pread', 'mixed'].includes(ev(load).how ?? ''), JSON.stringify(load.event));
      assert.ok((ev(load).share ?? 0) >= 0.5);
      assert.ok(alerts.some((a) => a.category === 'replica.serving'), show(alerts));
    });
  }

  test('observe, mmap off, a byte copy of a 64 MiB model under another name in another folder, started with nohup: a replica, answering as the original does', async () => {
    const big = join(tmp.dir, 'big-model');
    mkdirSync(big, { recursive: true });
    writeTinyGguf(join(big, 'model.gguf'), { mib: 64 });
    // the allowed original, serving the protected model: the canary's reference
    const origPort = join(tmp.dir, 'orig.port');
    const orig = spawn(process.execPath, [SERVER, join(big, 'model.gguf'), origPort, '1', '120'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 1500 && !existsSync(origPort); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(existsSync(origPort), 'the original llama.cpp server started');
      const elsewhere = join(tmp.dir, 'scratch', 'cache');
      const port = join(tmp.dir, 'nohup.port');
      const agent = join(tmp.dir, 'nohup.sh');
      writeFileSync(agent, [
        '#!/bin/sh',
        `mkdir -p ${elsewhere} && cp ${join(big, 'model.gguf')} ${join(elsewhere, 'blob.dat')}`,
        `nohup ${process.execPath} ${SERVER} ${join(elsewhere, 'blob.dat')} ${port} 0 8 >/dev/null 2>&1 &`,
        `i=0; while [ ! -s ${port} ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done`,
        `python3 -c "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + open(sys.argv[1]).read() + '/v1/completions', data=b'{\\"prompt\\": \\"hello\\", \\"max_tokens\\": 4}', timeout=5).read()" ${port} || true`,
        // the server lives 8 s: time for the probe and the canary
        'wait',
      ].join('\n'));
      chmodSync(agent, 0o755);
      const log = join(tmp.dir, 'nohup.ndjson');
      const r = await redline(['exec', '--mode', 'observe', '--weights', big, '--allow-pid', String(orig.pid), '--log', log, '--', agent], {}, 90_000);
      const alerts = alertsOf(readLog(log));
      assert.equal(r.code, 3, r.stderr);
      assert.ok(alerts.some((a) => a.category === 'weights.copy' && ev(a).path === join(elsewhere, 'blob.dat')), show(alerts));
      const load = alerts.find((a) => a.category === 'replica.spawn');
      assert.ok(load, show(alerts));
      const serving = alerts.find((a) => a.category === 'replica.serving');
      assert.ok(serving, show(alerts));
      assert.equal((serving.event as { functional?: string }).functional, 'same', JSON.stringify(serving.event));
      assert.equal(serving.functional, 'same');
    } finally {
      orig.kill('SIGKILL');
    }
  });

  test('enforce: exit 3, and the replica never answers', async () => {
    const { r, portFile } = await trial('enforced', true, 'enforce');
    assert.equal(r.code, 3, r.stderr);
    // frozen at the copy, before the server could start: no port, or a port that never answers
    if (existsSync(portFile)) {
      const port = Number(readFileSync(portFile, 'utf8'));
      const answered = await fetch(`http://127.0.0.1:${port}/v1/models`, { signal: AbortSignal.timeout(1500) }).then(
        () => true,
        () => false,
      );
      assert.equal(answered, false);
    }
  });
});
