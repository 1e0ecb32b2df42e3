// GPU memory under `redline exec`, against the fake nvidia-smi (no GPU on these machines):
// a subject process taking memory is gpu.alloc; one taking at least half of what the allowed
// server holds is replica.spawn.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel } from '../helpers/model.js';
import { alertsOf, readLog, redline, ROOT, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();
const FAKE = join(ROOT, 'tests/helpers/fake-nvidia-smi');
const GPU = 'GPU-0c6a4b1e-1f6d-4c39-9d47-5d0e1b2c3a4f';

describe('GPU memory (fake nvidia-smi)', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const state = join(tmp.dir, 'gpu.json');
  const server = spawn('sleep', ['600'], { stdio: 'ignore' });
  after(() => {
    server.kill('SIGKILL');
    tmp.cleanup();
  });

  function agent(mib: number): string {
    // the subject "allocates": the fake GPU now lists its pid with that much memory
    const p = join(tmp.dir, `agent-${mib}.sh`);
    writeFileSync(
      p,
      [
        '#!/bin/sh',
        `python3 - <<'PY'`,
        'import json, os, time',
        `s = json.load(open(${JSON.stringify(state)}))`,
        `s["apps"].append({"pid": os.getpid(), "used_mib": ${mib}, "gpu_uuid": "${GPU}"})`,
        `json.dump(s, open(${JSON.stringify(state)}, "w"))`,
        'time.sleep(1.5)',
        'PY',
      ].join('\n'),
    );
    chmodSync(p, 0o755);
    return p;
  }

  function reset(): void {
    writeFileSync(state, JSON.stringify({ mode: 'ok', gpus: [{ index: 0, uuid: GPU, total_mib: 81559, used_mib: 40000 }], apps: [{ pid: server.pid, used_mib: 40000, gpu_uuid: GPU }] }));
  }

  const run = async (mib: number) => {
    reset();
    const log = join(tmp.dir, `gpu-${mib}.ndjson`);
    const r = await redline(['exec', '--mode', 'observe', '--nvidia-smi', FAKE, '--gpu-interval', '200', '--allow-pid', String(server.pid), '--log', log, '--', agent(mib)], { FAKE_NVIDIA_SMI_STATE: state });
    return { r, alerts: alertsOf(readLog(log)) };
  };

  test('a small allocation is gpu.alloc (medium) only', async () => {
    const { r, alerts } = await run(2000);
    const a = alerts.find((x) => x.category === 'gpu.alloc');
    assert.ok(a, JSON.stringify(alerts));
    assert.equal(a.severity, 'medium');
    assert.equal((a.proc as { comm: string }).comm, 'python3');
    assert.ok(!alerts.some((x) => x.category === 'replica.spawn'));
    assert.equal(r.code, 0);
  });

  test('half the allowed server’s footprint or more is replica.spawn', async () => {
    const { r, alerts } = await run(30_000);
    const a = alerts.find((x) => x.category === 'replica.spawn');
    assert.ok(a, JSON.stringify(alerts));
    assert.match(String(a.summary), /30000 MiB of GPU memory, like the allowed server \(40000 MiB\)/);
    assert.equal(r.code, 3);
  });

  test('a replica outside the subject: its GPU memory counts like any replica’s', async () => {
    reset();
    const model = makeModel(join(tmp.dir, 'model'), 8);
    const started = join(tmp.dir, 'agent-started');
    const agentScript = join(tmp.dir, 'agent-waits.sh');
    writeFileSync(agentScript, `#!/bin/sh\ntouch ${started}\nsleep 6\n`);
    chmodSync(agentScript, 0o755);
    const log = join(tmp.dir, 'gpu-outside.ndjson');
    const trial = redline(['exec', '--mode', 'observe', '--weights', model.dir, '--nvidia-smi', FAKE, '--gpu-interval', '200', '--allow-pid', String(server.pid), '--log', log, '--', agentScript], { FAKE_NVIDIA_SMI_STATE: state });
    while (!existsSync(started)) await new Promise((r) => setTimeout(r, 50));
    // started by this test, not by the subject: it maps the weights, then takes GPU memory
    const outside = spawn('python3', ['-c', [
      'import json, mmap, os, sys, time',
      'f = open(sys.argv[1], "rb"); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)',
      'time.sleep(1)',
      's = json.load(open(sys.argv[2]))',
      `s["apps"].append({"pid": os.getpid(), "used_mib": 3000, "gpu_uuid": "${GPU}"})`,
      'json.dump(s, open(sys.argv[2], "w"))',
      'time.sleep(3)',
    ].join('\n'), model.weights, state], { stdio: 'ignore' });
    try {
      await trial;
    } finally {
      outside.kill('SIGKILL');
    }
    const alerts = alertsOf(readLog(log));
    const pidOf = (a: (typeof alerts)[number]) => (a.proc as { pid: number } | undefined)?.pid;
    assert.ok(alerts.some((a) => a.rule === 'replica-outside-subject' && pidOf(a) === outside.pid), JSON.stringify(alerts.map((a) => a.summary)));
    const gpu = alerts.find((a) => a.category === 'gpu.alloc' && pidOf(a) === outside.pid);
    assert.ok(gpu, JSON.stringify(alerts.map((a) => a.summary)));
  });

  test('the allowed server itself raises nothing', async () => {
    const { alerts } = await run(1);
    assert.ok(!alerts.some((x) => (x.proc as { pid: number } | undefined)?.pid === server.pid));
  });
});
