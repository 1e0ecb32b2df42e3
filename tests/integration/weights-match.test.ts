// Registry and matching on real files: which files of a model folder are weights, and
// how a full copy, a copy in progress, a hard link, an archive, a copy of a copy and
// unrelated big files are told apart — by content, never by name.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, linkSync, openSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closeHashers, fingerprint } from '../../daemon/sensors/weights/fingerprint.js';
import { matchCandidate } from '../../daemon/sensors/weights/match.js';
import { WeightRegistry } from '../../daemon/sensors/weights/registry.js';
import { makeModel, type Model } from '../helpers/model.js';
import { tempDir } from '../helpers/redline.js';

describe('weights registry and matching', () => {
  const tmp = tempDir();
  const registry = new WeightRegistry();
  let model: Model;
  const at = (p: string) => join(tmp.dir, p);

  before(async () => {
    model = makeModel(at('model'), 24);
  });
  after(async () => {
    await closeHashers();
    tmp.cleanup();
  });

  test('only the weight file of the folder is registered; README, config, tokenizer are not', async () => {
    const res = await registry.registerPaths([model.dir]);
    assert.deepEqual(res.files.map((f) => f.path), [model.weights]);
    assert.equal(res.files[0]?.fp.format, 'safetensors');
    assert.ok(res.skipped.some((s) => s.path.endsWith('README.md')));
  });

  test('a full copy under another name', async () => {
    copyFileSync(model.weights, at('x.dat'));
    const m = await matchCandidate(at('x.dat'), registry);
    assert.equal(m?.kind, 'full');
    assert.equal(m?.source.path, model.weights);
  });

  test('a copy in progress: partial from its first MiB, full once complete', async () => {
    const src = openSync(model.weights, 'r');
    const dst = openSync(at('growing.bin'), 'w');
    const buf = Buffer.alloc(1 << 20);
    readSync(src, buf, 0, buf.length, 0);
    writeSync(dst, buf);
    assert.equal((await matchCandidate(at('growing.bin'), registry))?.kind, 'partial');
    closeSync(src);
    closeSync(dst);
    copyFileSync(model.weights, at('growing.bin'));
    assert.equal((await matchCandidate(at('growing.bin'), registry))?.kind, 'full');
  });

  test('under one MiB there is not enough evidence yet', async () => {
    const src = openSync(model.weights, 'r');
    const buf = Buffer.alloc(512 << 10);
    readSync(src, buf, 0, buf.length, 0);
    closeSync(src);
    writeFileSync(at('small.bin'), buf);
    assert.equal(await matchCandidate(at('small.bin'), registry), null);
  });

  test('a hard link is the same inode', async () => {
    linkSync(model.weights, at('hl'));
    assert.equal((await matchCandidate(at('hl'), registry))?.kind, 'hardlink');
  });

  test('a tar of the folder holds the weights at a 512-byte boundary', async () => {
    execFileSync('tar', ['cf', at('m.tar'), '-C', tmp.dir, 'model']);
    const m = await matchCandidate(at('m.tar'), registry);
    assert.equal(m?.kind, 'archive');
    assert.equal((m?.offset ?? 1) % 512, 0);
  });

  test('a copy of a copy: registered copies are sources, with their lineage', async () => {
    copyFileSync(model.weights, at('gen1.bin'));
    const gen1 = registry.addCopy(at('gen1.bin'), await fingerprint(at('gen1.bin')), registry.files()[0]!, 'full');
    assert.equal(gen1.generation, 1);
    copyFileSync(at('gen1.bin'), at('gen2.bin'));
    const m = await matchCandidate(at('gen2.bin'), registry, { preferSources: [at('gen1.bin')] });
    assert.equal(m?.kind, 'full');
    assert.equal(m?.source.path, at('gen1.bin'));
    assert.equal((m?.source.generation ?? 0) + 1, 2);
  });

  test('a renamed copy is still found by inode', async () => {
    renameSync(at('gen1.bin'), at('renamed.txt'));
    assert.equal((await matchCandidate(at('renamed.txt'), registry))?.kind, 'hardlink');
  });

  test('unrelated big files and a gzip of the folder are not the weights', async () => {
    const fd = openSync(at('random.bin'), 'w');
    for (let i = 0; i < 24; i++) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
    assert.equal(await matchCandidate(at('random.bin'), registry), null);
    execFileSync('tar', ['czf', at('m.tgz'), '-C', tmp.dir, 'model']);
    assert.equal(await matchCandidate(at('m.tgz'), registry), null);
    writeFileSync(at('zeros.img'), Buffer.alloc(8 << 20));
    assert.equal(await matchCandidate(at('zeros.img'), registry), null);
  });
});
