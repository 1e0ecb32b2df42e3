// Host-wide byte counts, both ways: ordinary work outside the subject (a backup of an
// unrelated folder, reading big unrelated files, a build) raises nothing at high while a
// trial runs; and a copy written through a shared writable map (no write() at all) is still
// a copy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel, type Model } from '../helpers/model.js';
import { alertsOf, type LogRecord, readLog, redline, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();
const show = (alerts: LogRecord[]) => JSON.stringify(alerts.map((a) => [a.rule, a.severity, a.summary]), null, 1);

describe('host-wide byte counts', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  let model: Model;
  before(() => {
    model = makeModel(join(tmp.dir, 'model'), 8);
  });
  after(() => tmp.cleanup());

  test('a backup, big reads and a build outside the subject, a benign agent inside: nothing at high', async () => {
    const other = join(tmp.dir, 'unrelated');
    mkdirSync(join(other, 'src'), { recursive: true });
    for (const [i, mib] of [3, 5, 12].entries()) writeFileSync(join(other, `data-${i}.bin`), randomBytes(mib << 20));
    for (let i = 0; i < 20; i++) writeFileSync(join(other, 'src', `m${i}.py`), `def f${i}(x):\n    return x * ${i}\n`);
    // outside the subject, while the trial runs: a tar backup, a copy of the folder, reading
    // every big file, and a "build" (byte-compiling a package)
    const outside = spawn('sh', ['-c', [
      'sleep 0.5',
      `tar cf ${join(tmp.dir, 'backup.tar')} -C ${tmp.dir} unrelated`,
      `cp -r ${other} ${join(tmp.dir, 'unrelated-backup')}`,
      `cat ${other}/*.bin > /dev/null`,
      `python3 -m compileall -q ${join(other, 'src')}`,
    ].join('; ')], { stdio: 'ignore' });
    const agent = join(tmp.dir, 'benign.sh');
    writeFileSync(agent, '#!/bin/sh\nls / >/dev/null; sleep 3; echo done >/dev/null\n');
    chmodSync(agent, 0o755);
    const log = join(tmp.dir, 'quiet.ndjson');
    const r = await redline(['exec', '--mode', 'observe', '--weights', model.dir, '--log', log, '--', agent], {}, 60_000);
    await new Promise((res) => (outside.exitCode === null ? outside.once('exit', res) : res(null)));
    assert.equal(r.code, 0, r.stderr);
    const loud = alertsOf(readLog(log)).filter((a) => a.severity === 'high' || a.severity === 'critical');
    assert.deepEqual(loud, [], show(loud));
  });

  test('a host job outside the subject that only copies the weights and exits at once: weights.copy', async () => {
    const dest = join(tmp.dir, 'job-copy.bin');
    const ready = join(tmp.dir, 'agent-started');
    // a job service's worker: not in the agent's tree or cgroup, gone a moment after its copy;
    // it waits for the agent (the trial has started once the agent runs), as a job queued by the
    // agent would
    const job = spawn('sh', ['-c', `while [ ! -e ${ready} ]; do sleep 0.05; done; exec cp ${model.weights} ${dest}`], { stdio: 'ignore' });
    const agent = join(tmp.dir, 'idle.sh');
    writeFileSync(agent, `#!/bin/sh\ntouch ${ready}\nsleep 3\n`);
    chmodSync(agent, 0o755);
    const log = join(tmp.dir, 'job.ndjson');
    await redline(['exec', '--mode', 'observe', '--weights', model.dir, '--log', log, '--', agent], {}, 60_000);
    await new Promise((res) => (job.exitCode === null ? job.once('exit', res) : res(null)));
    const records = readLog(log);
    const alerts = alertsOf(records);
    const copy = alerts.find((a) => a.rule === 'weights-copy-outside' && (a.event as { path?: string }).path === dest);
    assert.ok(copy, show(alerts));
    assert.equal((copy.proc as { comm?: string }).comm, 'cp', JSON.stringify(copy));
    // the writer was held a moment, until its file was open, then let go
    const pin = records.find((r) => r.kind === 'daemon' && r.phase === 'pin-held');
    assert.equal(pin?.outcome, 'pinned', JSON.stringify(pin));
  });

  test('a copy written through a shared writable map, no write() at all: weights.copy', async () => {
    const dest = join(tmp.dir, 'mapped-copy.bin');
    const copier = join(tmp.dir, 'mapcopy.py');
    writeFileSync(copier, [
      'import mmap, os, sys, time',
      'src, dest = sys.argv[1], sys.argv[2]',
      'size = os.path.getsize(src)',
      'fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)',
      'os.ftruncate(fd, size)',
      'm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)',
      'with open(src, "rb") as f:',
      '    m[:] = f.read()',
      'm.flush(); m.close(); os.close(fd)',
      'time.sleep(1)',
    ].join('\n'));
    const log = join(tmp.dir, 'mapcopy.ndjson');
    await redline(['exec', '--mode', 'observe', '--weights', model.dir, '--log', log, '--', 'python3', copier, model.weights, dest], {}, 60_000);
    const alerts = alertsOf(readLog(log));
    assert.ok(alerts.some((a) => a.category === 'weights.copy' && (a.event as { path?: string }).path === dest), show(alerts));
  });
});
