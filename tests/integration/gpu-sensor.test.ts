// The real GpuSensor against the fake nvidia-smi (tests/helpers/fake-nvidia-smi), driven
// through a state file: the sensor's child processes, timeouts and kills are all real.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import type { GpuEvent } from '../../daemon/events.js';
import { type GpuOptions, type GpuRecovery, GpuSensor, gpuUnavailableReason } from '../../daemon/sensors/gpu/index.js';
import type { SensorTrouble } from '../../daemon/sensors/sensor.js';
import { isAlive } from '../helpers/procs.js';
import { ROOT, tempDir } from '../helpers/redline.js';

const FAKE = join(ROOT, 'tests/helpers/fake-nvidia-smi');
const GPU = 'GPU-0c6a4b1e-1f6d-4c39-9d47-5d0e1b2c3a4f';
const SERVER = 424242;
const INTERVAL = 100;
// short where a timeout is the point; elsewhere generous, since each call of the fake
// starts a node process, slow on a loaded two-core machine
const TIMEOUT = 400;
const PATIENT = 3000;

interface App {
  pid: number;
  used_mib: number | null;
  gpu_uuid: string;
}
type Mode = 'ok' | 'hang' | 'garbage' | 'fail';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('GpuSensor with the fake nvidia-smi', () => {
  const tmp = tempDir('redline-gpu-');
  const state = join(tmp.dir, 'state.json');
  const hungFile = `${state}.hung`;
  const sensors: GpuSensor[] = [];
  const savedEnv = process.env.FAKE_NVIDIA_SMI_STATE;
  // the sensor's children inherit this
  process.env.FAKE_NVIDIA_SMI_STATE = state;

  const hungPids = (): number[] => (existsSync(hungFile) ? readFileSync(hungFile, 'utf8').split('\n').filter(Boolean).map(Number) : []);

  afterEach(async () => {
    await Promise.all(sensors.splice(0).map((s) => s.stop()));
  });
  after(() => {
    for (const pid of hungPids()) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    if (savedEnv === undefined) delete process.env.FAKE_NVIDIA_SMI_STATE;
    else process.env.FAKE_NVIDIA_SMI_STATE = savedEnv;
    tmp.cleanup();
  });

  // atomically, so a call never reads half a state
  function setState(apps: App[], mode: Mode = 'ok'): void {
    const s = { mode, gpus: [{ index: 0, uuid: GPU, total_mib: 81559, used_mib: apps.reduce((n, a) => n + (a.used_mib ?? 0), 0) }], apps };
    writeFileSync(`${state}.tmp`, JSON.stringify(s));
    renameSync(`${state}.tmp`, state);
  }
  const server: App = { pid: SERVER, used_mib: 40000, gpu_uuid: GPU };
  const app = (pid: number, used_mib: number): App => ({ pid, used_mib, gpu_uuid: GPU });

  function watch(opts: Partial<GpuOptions> = {}) {
    const sensor = new GpuSensor({ nvidiaSmi: FAKE, intervalMs: INTERVAL, timeoutMs: PATIENT, allowPids: [SERVER], ...opts });
    sensors.push(sensor);
    const events: GpuEvent[] = [];
    const troubles: (SensorTrouble & { at: number })[] = [];
    const recoveries: GpuRecovery[] = [];
    sensor.on('event', (e: GpuEvent) => events.push(e));
    sensor.on('trouble', (t: SensorTrouble) => troubles.push({ ...t, at: Date.now() }));
    sensor.on('recovered', (r: GpuRecovery) => recoveries.push(r));
    const until = async <T>(what: string, find: () => T | undefined, ms = 5000): Promise<T> => {
      const t0 = Date.now();
      for (;;) {
        const v = find();
        if (v !== undefined) return v;
        if (Date.now() - t0 > ms) assert.fail(`${what} within ${ms} ms; events ${JSON.stringify(events)} troubles ${JSON.stringify(troubles)}`);
        await sleep(10);
      }
    };
    return { sensor, events, troubles, recoveries, until };
  }

  test('a process that appears is reported, measured against the allowed server', async () => {
    setState([server]);
    const w = watch();
    await w.sensor.start();
    // the first poll ran before start() resolved
    const own = w.events.find((e) => e.pid === SERVER);
    assert.ok(own);
    assert.equal(own.replica_like, false, 'the allowed server is not a replica of itself');
    assert.equal(own.allowed_mib, 40000);

    const t0 = Date.now();
    setState([server, app(5001, 30000), app(5002, 2000)]);
    const big = await w.until('an event for the big newcomer', () => w.events.find((e) => e.pid === 5001));
    assert.deepEqual({ ...big, time: 0 }, { type: 'gpu', time: 0, pid: 5001, gpu_uuid: GPU, used_mib: 30000, previous_mib: 0, footprint_mib: 30000, allowed_mib: 40000, replica_like: true, total_mib: 81559 });
    assert.ok(big.time >= t0 && big.time <= Date.now());
    const small = w.events.find((e) => e.pid === 5002);
    assert.equal(small?.used_mib, 2000);
    assert.equal(small?.replica_like, false);
    assert.equal(w.sensor.health().running, true);
    assert.deepEqual(w.sensor.ownPids(), []);
  });

  test('a small change is not reported again, a big one is', async () => {
    setState([server, app(5001, 30000)]);
    const w = watch({ changeMib: 256 });
    await w.sensor.start();
    const count = () => w.events.filter((e) => e.pid === 5001).length;
    assert.equal(count(), 1);
    setState([server, app(5001, 30200)]);
    await sleep(INTERVAL * 4);
    assert.equal(count(), 1, 'a 200 MiB move is below the threshold');
    setState([server, app(5001, 31000)]);
    const again = await w.until('a second report', () => w.events.filter((e) => e.pid === 5001)[1]);
    assert.equal(again.used_mib, 31000);
    assert.equal(again.previous_mib, 30000);
  });

  test('a hanging nvidia-smi: one timeout trouble, killed children, polling goes on and recovers', async () => {
    setState([server]);
    const w = watch({ timeoutMs: TIMEOUT });
    await w.sensor.start();
    const base = hungPids().length;
    const t0 = Date.now();
    setState([server], 'hang');
    const timeout = await w.until('a timeout trouble', () => w.troubles.find((t) => t.reason === 'timeout'));
    // one interval to start the next call, the timeout, and a fake node process's start-up
    assert.ok(timeout.at - t0 <= TIMEOUT + INTERVAL + 300, `took ${timeout.at - t0} ms`);
    assert.equal(timeout.sensor, 'gpu');
    assert.match(timeout.detail, /did not answer within 400 ms/);
    // let it try again a few times: never more than one poll (two calls) alive at once
    let maxAlive = 0;
    await w.until('two more polls', () => {
      maxAlive = Math.max(maxAlive, hungPids().filter(isAlive).length);
      return hungPids().length >= base + 6 ? true : undefined;
    });
    assert.ok(maxAlive <= 2, `${maxAlive} hung calls alive at once`);
    assert.equal(w.troubles.filter((t) => t.reason === 'timeout').length, 1, 'reported once until it recovers');
    assert.match(w.sensor.health().detail ?? '', /did not answer/);

    setState([server, app(5003, 1000)]);
    await w.until('recovery', () => w.recoveries[0]);
    assert.match(w.recoveries[0]?.detail ?? '', /answers again \(after: timeout\)/);
    await w.until('an event after recovery', () => w.events.find((e) => e.pid === 5003));
    await sleep(TIMEOUT + 100);
    assert.deepEqual(hungPids().filter(isAlive), [], 'every hung call was killed');
    assert.equal(w.sensor.health().running, true);
  });

  test('garbage output is a garbage trouble, not a crash', async () => {
    setState([server]);
    const w = watch();
    await w.sensor.start();
    setState([server], 'garbage');
    const g = await w.until('a garbage trouble', () => w.troubles.find((t) => t.reason === 'garbage'));
    assert.match(g.detail, /unreadable output from .*fake-nvidia-smi/);
    await sleep(INTERVAL * 4);
    assert.equal(w.troubles.length, 1, 'reported once while it lasts');
    setState([server, app(5004, 500)]);
    await w.until('an event after recovery', () => w.events.find((e) => e.pid === 5004));
    assert.equal(w.recoveries.length, 1);
  });

  test('a failing nvidia-smi is a failed trouble carrying its message', async () => {
    setState([server]);
    const w = watch();
    await w.sensor.start();
    setState([server], 'fail');
    const f = await w.until('a failed trouble', () => w.troubles.find((t) => t.reason === 'failed'));
    assert.match(f.detail, /exit 9/);
    assert.match(f.detail, /couldn't communicate with the NVIDIA driver/);
    // the same problem again after a recovery is reported again
    setState([server]);
    await w.until('recovery', () => w.recoveries[0]);
    setState([server], 'fail');
    await w.until('a second failed trouble', () => w.troubles.filter((t) => t.reason === 'failed')[1]);
  });

  test('a missing binary: start() rejects naming the path, and doctor says why', async () => {
    const missing = join(tmp.dir, 'no-such-nvidia-smi');
    const w = watch({ nvidiaSmi: missing });
    await assert.rejects(w.sensor.start(), (err: Error) => err.message.includes(missing));
    assert.equal(w.sensor.health().running, false);
    assert.match(gpuUnavailableReason(missing) ?? '', /not found or not executable at .*no-such-nvidia-smi/);
    assert.match(gpuUnavailableReason('redline-no-such-nvidia-smi') ?? '', /not found on PATH/);
    assert.equal(gpuUnavailableReason(FAKE), null);
  });

  test('no driver at start: start() rejects with nvidia-smi’s own message, no alert', async () => {
    setState([], 'fail');
    const w = watch();
    await assert.rejects(w.sensor.start(), /couldn't communicate with the NVIDIA driver/);
    assert.deepEqual(w.troubles, []);
  });

  test('a hang at start is trouble, and start() still resolves and keeps polling', async () => {
    setState([server], 'hang');
    const w = watch({ timeoutMs: TIMEOUT });
    const t0 = Date.now();
    await w.sensor.start();
    assert.ok(Date.now() - t0 < TIMEOUT + 500);
    assert.equal(w.troubles[0]?.reason, 'timeout');
    setState([server]);
    await w.until('the server once it answers', () => w.events.find((e) => e.pid === SERVER));
  });

  test('stop() during a hung call returns at once and leaves no child', async () => {
    setState([server]);
    const w = watch({ timeoutMs: 10_000 });
    await w.sensor.start();
    const before = hungPids().length;
    setState([server], 'hang');
    await w.until('a hung call', () => (hungPids().length > before ? true : undefined));
    const t0 = Date.now();
    await w.sensor.stop();
    assert.ok(Date.now() - t0 < 1500, `stop took ${Date.now() - t0} ms`);
    await sleep(50);
    assert.deepEqual(hungPids().filter(isAlive), []);
  });

  test('a listener that throws is trouble, and polling goes on', async () => {
    setState([server]);
    const w = watch();
    await w.sensor.start();
    w.sensor.once('event', () => {
      throw new Error('listener bug');
    });
    setState([server, app(5005, 700)]);
    const t = await w.until('a failed trouble', () => w.troubles.find((x) => x.reason === 'failed'));
    assert.match(t.detail, /listener bug/);
    setState([server, app(5005, 700), app(5006, 800)]);
    await w.until('later events', () => w.events.find((e) => e.pid === 5006));
  });

  test('the fake answers unknown flags as nvidia-smi does', () => {
    const r = spawnSync(FAKE, ['--query-gpu=name', '--format=csv'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stdout, /Invalid combination of input arguments/);
  });
});
