// Usage and config errors exit 2 with a message that says where, before anything runs.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { redline, tempDir, USER_UID } from '../helpers/redline.js';

describe('usage errors', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  test('a bad config file value: exit 2 with file:line:col', async () => {
    const cfg = join(tmp.dir, 'bad.yaml');
    writeFileSync(cfg, 'mode: enforce\nafter-trip: explode\n');
    const r = await redline(['exec', '--config', cfg, '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${cfg.replace(/[.]/g, '\\.')}:2:13: .*"explode" is not one of hold, kill`));
  });

  test('an unknown config key: exit 2 at the key', async () => {
    const cfg = join(tmp.dir, 'unknown.yaml');
    writeFileSync(cfg, 'mode: observe\nprotect-pids: [1]\n');
    const r = await redline(['exec', '--config', cfg, '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown\.yaml:2:1: unknown key "protect-pids"/);
  });

  test('a bad flag value: exit 2', async () => {
    const r = await redline(['exec', '--mode', 'fast', '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /fast/);
  });

  test('a log group that does not exist: exit 2 naming it', async () => {
    const r = await redline(['exec', '--log-group', 'no-such-group-redline', '--log', join(tmp.dir, 'g.ndjson'), '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--log-group no-such-group-redline: no such group/);
  });

  test('run without a subject: exit 2 saying what it needs', async () => {
    const r = await redline(['run', '--log', join(tmp.dir, 'x.ndjson')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /subject/);
  });

  test('a mistyped --weights path, or a folder that holds no weights: exit 2 at once, naming it; no trial runs', async () => {
    const marker = join(tmp.dir, 'ran');
    const missing = join(tmp.dir, 'no-such-model');
    const r = await redline(['exec', '--weights', missing, '--log', join(tmp.dir, 'w.ndjson'), '--', 'touch', marker], {}, 15_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`--weights ${missing}: no such file or folder`));
    const empty = join(tmp.dir, 'not-a-model');
    mkdirSync(empty);
    writeFileSync(join(empty, 'notes.txt'), 'no weights here\n');
    const e = await redline(['exec', '--weights', empty, '--log', join(tmp.dir, 'w.ndjson'), '--', 'touch', marker], {}, 15_000);
    assert.equal(e.code, 2, e.stderr);
    assert.match(e.stderr, /the folder holds no weights file/);
    assert.equal(existsSync(marker), false, 'the command never ran');
    assert.equal(existsSync(join(tmp.dir, 'w.ndjson')), false, 'no log was written');
  });

  test('a log that cannot be created: exit 2 at once with the reason (it used to hang)', async () => {
    const r = await redline(['exec', '--log', '/proc/nope/x.ndjson', '--', 'true'], {}, 15_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--log \/proc\/nope\/x\.ndjson: cannot create the log \(no such file or folder\)/);
  });

  test('exec without a command: exit 2', async () => {
    const r = await redline(['exec']);
    assert.equal(r.code, 2);
  });

  test('--sensor ebpf where eBPF cannot run stops with the reason and the way out (exit 2)', { skip: process.getuid?.() === 0 ? false : 'runs redline as nobody through setpriv, which needs root' }, async () => {
    // (as a user: the eBPF sensor needs root; the command never starts)
    const r = await redline(['exec', '--sensor', 'ebpf', '--socket', 'off', '--log', join(tmp.dir, 'e.ndjson'), '--', 'true'], { HOME: tmp.dir }, 60_000, USER_UID);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot monitor with --sensor ebpf: the eBPF sensor needs root.*\n.*--sensor poll/);
  });

  test('doctor reports each sensor and action and exits 0', async () => {
    const r = await redline(['doctor']);
    assert.equal(r.code, 0);
    for (const name of ['sensor ebpf', 'sensor poll', 'sensor weights', 'sensor gpu', 'cgroup v2', 'action freeze', 'action kill', 'output audit log']) assert.match(r.stdout, new RegExp(name));
    assert.match(r.stdout, /no {3}sensor gpu .*nvidia-smi/, 'no GPU here: the GPU sensor says why it is off');
  });
});
