// The libbpf loader beside bpftrace: the weights' bytes read, written, copied and mapped by
// real processes in a real cgroup arrive as file_bytes events from the loader; a loader that
// dies is restarted and counts again; one that cannot load leaves the counting to bpftrace,
// which reports the same copy. Skips when the loader was not built (npm run build needs
// clang, libbpf-dev and bpftool) or the host cannot run eBPF.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGroup, findCgroupV2Mount, readEvents } from '../../daemon/cgroup.js';
import type { FileBytesEvent, SensorEvent } from '../../daemon/events.js';
import { findLoader } from '../../daemon/sensors/ebpf/host.js';
import { EbpfSensor } from '../../daemon/sensors/ebpf/index.js';
import type { SensorTrouble } from '../../daemon/sensors/sensor.js';
import { monitorSkipReason, sweepGroup } from '../helpers/host.js';
import { makeModel } from '../helpers/model.js';
import { alertsOf, readLog, redline, startRedline, stopRedline, waitForRecord } from '../helpers/redline.js';

const loader = findLoader();
const skip = monitorSkipReason() ?? (loader ? null : 'the libbpf loader is not built (npm run build, with clang, libbpf-dev and bpftool installed)');
const dir = mkdtempSync(join(tmpdir(), 'redline-test-loader-'));
const group = join(findCgroupV2Mount() ?? '/nonexistent', 'redline', `test-loader-${process.pid}`);
const weights = join(dir, 'model.bin');

/** runs `cmd` in the subject's group (or outside it) and waits for it */
function inGroup(cmd: string, subject = true): void {
  const r = spawnSync('/bin/sh', ['-c', subject ? `echo $$ > "${group}/cgroup.procs" && ${cmd}` : cmd], { stdio: 'pipe' });
  assert.equal(r.status, 0, String(r.stderr));
}

function collect(sensor: EbpfSensor) {
  const bytes: FileBytesEvent[] = [];
  const troubles: SensorTrouble[] = [];
  sensor.on('event', (ev: SensorEvent) => {
    if (ev.type === 'file_bytes' && ev.ino === statSync(weights).ino) bytes.push(ev);
  });
  sensor.on('trouble', (t: SensorTrouble) => troubles.push(t));
  return { bytes, troubles };
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the libbpf loader', { skip: skip ?? false }, () => {
  before(async () => {
    await sweepGroup(group);
    createGroup(group);
    // 16 MiB, written outside the watch: a file the loader counts (≥ 1 MiB)
    writeFileSync(weights, Buffer.alloc(16 << 20, 7));
  });
  after(async () => {
    await sweepGroup(group);
    rmSync(dir, { recursive: true, force: true });
  });

  test('reads, writes, a copy_file_range copy and a map of the weights; the subject flagged; a dead loader restarted', async () => {
    const sensor = new EbpfSensor({ filter: { kind: 'cgroup', path: group } });
    const { bytes, troubles } = collect(sensor);
    try {
      await sensor.start();
      assert.equal(sensor.bytesBy(), 'libbpf');
      assert.equal(sensor.ownPids().length, 2, 'bpftrace and the loader');
      assert.doesNotMatch(sensor.scriptText(), /sys_enter_read\b|sys_exit_mmap/, 'bpftrace leaves the syscall byte counts to the loader');

      inGroup(`dd if=${weights} of=/dev/null bs=64k 2>/dev/null`);
      await until('the subject read of the weights', () => bytes.some((b) => b.op === 'read' && b.subject && b.comm === 'dd'));
      const read = bytes.filter((b) => b.op === 'read' && b.comm === 'dd').reduce((n, b) => n + b.bytes, 0);
      assert.equal(read, 16 << 20, 'every byte read is counted, in eighths of the file');

      inGroup(`cp ${weights} ${dir}/copy.bin`);
      await until('the copy', () => bytes.some((b) => b.op === 'copy_file_range' && b.subject));
      const dest = statSync(join(dir, 'copy.bin')).ino;
      // (the destination's own lines are about another inode; the collector keeps the source's)
      assert.ok(dest !== statSync(weights).ino);

      inGroup(`python3 -c "import mmap; f=open('${weights}','rb'); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ)"`);
      await until('the map', () => bytes.some((b) => b.op === 'mmap' && b.bytes === 16 << 20 && b.subject));

      // outside the subject: counted host-wide, not flagged
      inGroup(`cat ${weights} > /dev/null`, false);
      await until('the read outside', () => bytes.some((b) => b.comm === 'cat' && b.op === 'read'));
      assert.ok(bytes.filter((b) => b.comm === 'cat').every((b) => !b.subject));

      // the daemon's ping is echoed by both children, in order with their lines: a loader that
      // stops reading fails it (the trial's end then says events may be lost)
      const loaderPid = sensor.ownPids()[1] as number;
      assert.equal(await sensor.ping(1000), true);
      process.kill(loaderPid, 'SIGSTOP');
      try {
        assert.equal(await sensor.ping(500), false, 'a stopped loader does not answer');
      } finally {
        process.kill(loaderPid, 'SIGCONT');
      }
      assert.equal(await sensor.ping(1000), true);

      // the loader killed: reported, restarted, and counting again
      const restarted = new Promise((r) => sensor.once('restarted', r));
      process.kill(loaderPid, 'SIGKILL');
      await restarted;
      assert.ok(troubles.some((t) => t.reason === 'died' && /libbpf loader exited/.test(t.detail)), JSON.stringify(troubles));
      assert.notEqual(sensor.ownPids()[1], loaderPid);
      assert.equal(sensor.health().running, true);
      bytes.length = 0;
      inGroup(`dd if=${weights} of=/dev/null bs=1M 2>/dev/null`);
      await until('a read after the restart', () => bytes.some((b) => b.op === 'read' && b.subject));
    } finally {
      await sensor.stop();
    }
  });

  test('a loader that cannot load says so, and bpftrace counts the same bytes', async () => {
    const bogus = join(dir, 'bogus.bpf.o');
    writeFileSync(bogus, 'not an ELF object');
    const sensor = new EbpfSensor({ filter: { kind: 'cgroup', path: group }, loader: { bin: (loader as NonNullable<typeof loader>).bin, obj: bogus } });
    const { bytes, troubles } = collect(sensor);
    try {
      await sensor.start();
      assert.equal(sensor.bytesBy(), 'bpftrace');
      assert.match(sensor.bytesByWhy() ?? '', /^the loader did not start: /, 'the reason, for the sensor record');
      assert.equal(sensor.ownPids().length, 1);
      assert.ok(troubles.some((t) => /libbpf loader did not start/.test(t.detail) && /bpftrace counts/.test(t.detail)), JSON.stringify(troubles));
      assert.match(sensor.scriptText(), /sys_enter_read\b/);
      inGroup(`dd if=${weights} of=/dev/null bs=64k 2>/dev/null`);
      await until('the read, counted by bpftrace', () => bytes.some((b) => b.op === 'read' && b.subject && b.comm === 'dd'), 5000);
      await until('all of it', () => bytes.filter((b) => b.comm === 'dd').reduce((n, b) => n + b.bytes, 0) === 16 << 20);
    } finally {
      await sensor.stop();
    }
  });

  test('a subject that leaves its cgroup and then copies the weights is caught with the loader counting the bytes', async () => {
    const model = makeModel(join(dir, 'model'), 8);
    const log = join(dir, 'escape.ndjson');
    const root = findCgroupV2Mount() as string;
    const agent = `echo $$ > ${root}/cgroup.procs && dd if=${model.weights} of=${dir}/away.bin bs=1M 2>/dev/null`;
    const run = await redline(['exec', '--mode', 'observe', '--socket', 'off', '--log', log, '--weights', model.dir, '--', '/bin/sh', '-c', agent]);
    const recs = readLog(log);
    assert.equal(recs.find((r) => r.phase === 'sensor' && r.sensor === 'ebpf')?.bytes_by, 'libbpf');
    const copy = alertsOf(recs).find((r) => r.category === 'weights.copy');
    assert.ok(copy, `no weights.copy: ${run.stderr}`);
    assert.match(String(copy.summary), /away\.bin/);
  });

  test('turned off (REDLINE_LOADER=off): the sensor record says bpftrace counts the bytes, and why', async () => {
    const log = join(dir, 'loader-off.ndjson');
    const run = await redline(['exec', '--mode', 'observe', '--socket', 'off', '--log', log, '--', '/bin/true'], { REDLINE_LOADER: 'off' });
    const rec = readLog(log).find((r) => r.phase === 'sensor' && r.sensor === 'ebpf');
    assert.ok(rec, run.stderr);
    assert.equal(rec.bytes_by, 'bpftrace');
    assert.equal(rec.bytes_by_why, 'turned off (REDLINE_LOADER=off)');
  });

  test('a killed loader in enforce mode with --fail-closed: a monitor.degraded alert and the subject frozen', async () => {
    const log = join(dir, 'fail-closed.ndjson');
    const sleeper = spawnSync('/bin/sh', ['-c', `echo $$ > "${group}/cgroup.procs" && (sleep 60 >/dev/null 2>&1 &)`]);
    assert.equal(sleeper.status, 0);
    const daemon = startRedline(['run', '--subject-cgroup', group, '--log', log, '--socket', 'off', '--mode', 'enforce', '--fail-closed']);
    try {
      const started = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'sensor' && r.sensor === 'ebpf');
      assert.equal(started.bytes_by, 'libbpf');
      const [, loaderPid] = started.sensor_pids as number[];
      assert.ok(loaderPid);
      assert.equal(readEvents(group).frozen, 0);
      process.kill(loaderPid, 'SIGKILL');
      const a = await waitForRecord(log, (r) => r.kind === 'alert' && r.category === 'monitor.degraded' && r.rule === 'redline.sensor-died');
      assert.match(String(a.summary), /libbpf loader exited/);
      await until('the subject frozen', () => readEvents(group).frozen === 1, 5000);
    } finally {
      await stopRedline(daemon);
    }
  });
});
