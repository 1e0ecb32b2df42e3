// The weights' bytes through pipes and local sockets, as the loader reports them: in the order
// the kernel's steps fall, which is not the order the bytes moved in. A sender's first MiB into
// the pipe is reported before its first read step of the file, and the receiver's first MiB
// written out before its first read step of the pipe.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FileBytesEvent } from '../../daemon/events.js';
import { type Derived, LoadAccounting } from '../../daemon/analyze/weights/loads.js';
import { WeightRegistry } from '../../daemon/sensors/weights/registry.js';
import { makeModel, type Model } from '../helpers/model.js';
import { tempDir } from '../helpers/redline.js';

const MiB = 1 << 20;
const PIPE = { dev: 9, ino: 777 };
const OUT = { dev: 65024, ino: 4242 };

describe('load accounting through a pipe', () => {
  const tmp = tempDir();
  let model: Model;
  let registry: WeightRegistry;
  let file: { dev: number; ino: number; size: number };
  before(async () => {
    model = makeModel(join(tmp.dir, 'model'), 8);
    registry = new WeightRegistry();
    await registry.registerPaths([model.dir]);
    const st = statSync(model.weights);
    file = { dev: st.dev, ino: st.ino, size: st.size };
  });
  after(() => tmp.cleanup());

  let t = 1_000;
  const bytes = (pid: number, op: FileBytesEvent['op'], write: boolean, where: { dev: number; ino: number }, n: number, pipe: boolean, size = 0): FileBytesEvent => ({
    type: 'file_bytes', time: (t += 10), pid, tid: pid, op, write, fd: 3, bytes: n, ino: where.ino, dev: where.dev, size, subject: true, socket: false, pipe, comm: 'python3',
  });

  const run = (order: 'kernel' | 'natural') => {
    const found: Derived[] = [];
    const loads = new LoadAccounting(registry, 0.5, () => undefined, (d) => found.push(d));
    const w = registry.byInode(file.dev, file.ino);
    assert.ok(w, 'the weights are registered');
    const feed = (ev: FileBytesEvent) => {
      const key = `${ev.pid}:1`;
      if (ev.pipe && !ev.write) loads.fromPipe(ev, key);
      else if (ev.write) loads.wrote(key, ev);
      else loads.bytes(ev, key, w);
    };
    const senderWrite = bytes(100, 'sendto', true, PIPE, MiB, true);
    const senderRead = bytes(100, 'read', false, file, 1.06 * MiB, false, file.size);
    const receiverWrite = bytes(200, 'write', true, OUT, MiB, false, MiB);
    const receiverRead = bytes(200, 'recvfrom', false, PIPE, 4 * MiB, true);
    const first = order === 'kernel' ? [senderWrite, senderRead, receiverWrite, receiverRead] : [senderRead, senderWrite, receiverRead, receiverWrite];
    for (const ev of first) feed(ev);
    for (let i = 0; i < 6; i++) feed(bytes(100, 'read', false, file, 1.06 * MiB, false, file.size));
    feed(bytes(100, 'sendto', true, PIPE, 4 * MiB, true));
    feed(bytes(200, 'recvfrom', false, PIPE, 4 * MiB, true));
    feed(bytes(200, 'write', true, OUT, 4 * MiB, false, 5 * MiB));
    loads.tick(Date.now() + 5_000);
    return found;
  };

  for (const order of ['natural', 'kernel'] as const) {
    test(`the receiver that wrote the bytes out is a derived copy, piped from the sender (${order} order)`, () => {
      const found = run(order);
      assert.equal(found.length, 1, JSON.stringify(found.map((d) => d.pid)));
      const d = found[0] as Derived;
      assert.equal(d.pid, 200);
      assert.equal(d.pipedFrom, 100);
      assert.equal(d.dest.ino, OUT.ino);
      // its first MiB, reported before it was known to read the pipe, counts
      assert.equal(d.written, 5 * MiB);
    });
  }

  test('a process that only wrote (and never read the weights or a pipe carrying them) is nothing', () => {
    const found: Derived[] = [];
    const loads = new LoadAccounting(registry, 0.5, () => undefined, (d) => found.push(d));
    for (let i = 0; i < 8; i++) loads.wrote('300:1', bytes(300, 'write', true, OUT, 4 * MiB, false));
    loads.tick(Date.now() + 5_000);
    assert.deepEqual(found, []);
    assert.equal(loads.has('300:1'), false);
  });
});

// A derived copy in progress: a reader that has read 16 MiB of the weights (the kernel reports
// reads of the weights in 16 MiB steps) and written as much in a form no content match found is
// reported then, unconfirmed; reading the share confirms it; a content match withdraws it.
describe('a derived copy in progress', () => {
  const tmp = tempDir();
  let registry: WeightRegistry;
  let file: { dev: number; ino: number; size: number };
  before(async () => {
    const model = makeModel(join(tmp.dir, 'model'), 64);
    registry = new WeightRegistry();
    await registry.registerPaths([model.dir]);
    const st = statSync(model.weights);
    file = { dev: st.dev, ino: st.ino, size: st.size };
  });
  after(() => tmp.cleanup());

  let t = 1_000;
  const read = (n: number): FileBytesEvent => ({ type: 'file_bytes', time: (t += 10), pid: 400, op: 'read', write: false, fd: 3, bytes: n, ino: file.ino, dev: file.dev, size: file.size, subject: true, socket: false, pipe: false, comm: 'python3' });
  const wrote = (n: number): FileBytesEvent => ({ type: 'file_bytes', time: (t += 10), pid: 400, op: 'write', write: true, fd: 4, bytes: n, ino: OUT.ino, dev: OUT.dev, size: n, subject: true, socket: false, pipe: false, comm: 'python3' });

  /** an XOR copier at its pace: 16 MiB read, 4 MiB written four times, `steps` times over */
  const copier = (opts: { matching?: () => boolean } = {}) => {
    const found: Derived[] = [];
    const withdrawn: Derived[] = [];
    const loads = new LoadAccounting(registry, 0.5, () => undefined, (d) => found.push(d), () => undefined, opts.matching ?? (() => false), (d) => withdrawn.push(d));
    const w = registry.byInode(file.dev, file.ino);
    assert.ok(w, 'the weights are registered');
    const step = () => {
      loads.bytes(read(16 * MiB), '400:1', w);
      for (let i = 0; i < 4; i++) loads.wrote('400:1', wrote(4 * MiB));
    };
    return { loads, found, withdrawn, step };
  };

  test('16 MiB each way: reported at once, in progress; the share read confirms it, once', () => {
    const c = copier();
    c.step();
    assert.deepEqual(c.found.map((d) => [d.progress, d.read, d.written]), [['in_progress', 16 * MiB, 16 * MiB]], 'flagged with 16 MiB of 64 written');
    c.step();
    c.step();
    c.loads.tick(Date.now() + 5_000);
    assert.equal(c.found.length, 2, 'the share crossed (48 of 64 MiB): the derived copy itself');
    assert.equal(c.found[1]?.progress, 'confirmed');
    assert.equal(c.found[1]?.dest.ino, OUT.ino, 'the same destination');
    assert.deepEqual(c.withdrawn, []);
  });

  test('a file whose content match is still due is not reported until the match has had its look', () => {
    let due = true;
    const c = copier({ matching: () => due });
    c.step();
    assert.equal(c.found.length, 0, 'it may be a plain copy: its content match names it');
    due = false;
    c.loads.wrote('400:1', wrote(4 * MiB));
    assert.deepEqual(c.found.map((d) => d.progress), ['in_progress']);
  });

  test('a content match of what it wrote withdraws it, and nothing is confirmed', () => {
    const c = copier();
    c.step();
    c.loads.copied('400:1');
    assert.equal(c.withdrawn.length, 1);
    c.step();
    c.step();
    c.loads.tick(Date.now() + 5_000);
    assert.deepEqual(c.found.map((d) => d.progress), ['in_progress'], 'a copier by content is never derived');
  });

  test('a reader that writes less than a quarter of what it read (a server logging) is no copy in progress', () => {
    const found: Derived[] = [];
    const loads = new LoadAccounting(registry, 0.5, () => undefined, (d) => found.push(d));
    const w = registry.byInode(file.dev, file.ino);
    assert.ok(w);
    for (let i = 0; i < 4; i++) loads.bytes(read(16 * MiB), '401:1', w);
    loads.wrote('401:1', { ...wrote(8 * MiB), pid: 401 });
    loads.wrote('401:1', { ...wrote(8 * MiB), pid: 401 });
    assert.deepEqual(found, []);
  });
});
