// The poll sensor's parsers on /proc text as the kernel writes it (fixtures), and on this
// process's own /proc: fdinfo's position and flags, and the file-backed lines of maps.
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { makeDev, parseFdinfo, parseMaps, writable } from '../../daemon/sensors/poll/parse.js';
import { ROOT, tempDir } from '../helpers/redline.js';

const fixture = (name: string) => readFileSync(join(ROOT, 'tests/fixtures/proc-poll', name), 'utf8');

describe('fdinfo', () => {
  test('a file read 4 MiB into: its position, read-only', () => {
    const f = parseFdinfo(fixture('fdinfo-read'));
    assert.deepEqual(f, { pos: 4194304, flags: 0o100000 });
    assert.equal(writable(f?.flags ?? -1), false);
  });
  test('O_WRONLY and O_RDWR (with O_CLOEXEC and O_LARGEFILE) are writable', () => {
    assert.equal(writable(parseFdinfo(fixture('fdinfo-write'))?.flags ?? 0), true);
    assert.equal(writable(parseFdinfo(fixture('fdinfo-rdwr'))?.flags ?? 0), true);
  });
  test('an eventfd has extra lines and still parses', () => {
    assert.deepEqual(parseFdinfo(fixture('fdinfo-eventfd')), { pos: 0, flags: 0o2000002 });
  });
  test('text without pos or flags is not fdinfo', () => {
    assert.equal(parseFdinfo(''), null);
    assert.equal(parseFdinfo('pos:\t12\n'), null);
  });

  const tmp = tempDir('redline-poll-parse-');
  after(() => tmp.cleanup());
  test("this process's own fd: the position moves as it reads", () => {
    const path = join(tmp.dir, 'data');
    writeFileSync(path, Buffer.alloc(65536, 7));
    const fd = openSync(path, 'r');
    try {
      readSync(fd, Buffer.alloc(4096), 0, 4096, null);
      const f = parseFdinfo(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      assert.equal(f?.pos, 4096);
      assert.equal(writable(f?.flags ?? -1), false);
    } finally {
      closeSync(fd);
    }
  });
});

describe('maps', () => {
  const maps = parseMaps(fixture('maps'));
  test('only lines that name a file by inode', () => {
    assert.deepEqual(maps.map((m) => m.ino), [1842103, 1842103, 393222, 393222, 77]);
  });
  test('bytes per line, device as stat() gives it, shared-writable marked', () => {
    const shard = maps.filter((m) => m.ino === 393222);
    assert.deepEqual(shard.map((m) => m.bytes), [0x400000, 0x200000]);
    assert.equal(shard[0]?.dev, makeDev(0xfe, 0x01));
    assert.equal(shard[0]?.path, '/srv/models/llama/model-00001-of-00002.safetensors');
    assert.equal(shard[0]?.sharedWrite, false);
    const shm = maps.find((m) => m.ino === 77);
    assert.equal(shm?.sharedWrite, true);
    assert.equal(shm?.dev, makeDev(0x103, 0x02));
    assert.equal(shm?.path, '/dev/shm/replica weights (deleted)');
  });
  test("this process's own maps: node's binary has the dev and inode stat() reports", () => {
    const own = parseMaps(readFileSync('/proc/self/maps', 'utf8'));
    const st = statSync(process.execPath);
    const node = own.find((m) => m.ino === st.ino);
    assert.ok(node, 'node is mapped');
    assert.equal(node.dev, st.dev);
  });
});
