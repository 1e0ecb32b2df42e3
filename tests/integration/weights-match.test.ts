// Registry and matching on real files: which files of a model folder are weights, and
// how a full copy, a copy in progress, a hard link, an archive, a copy of a copy and
// unrelated big files are told apart — by content, never by name.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closeHashers, fingerprint, HEAD_BYTES, hashHead, hashRange } from '../../daemon/sensors/weights/fingerprint.js';
import { matchCandidate } from '../../daemon/sensors/weights/match.js';
import { type WeightFile, WeightRegistry } from '../../daemon/sensors/weights/registry.js';
import { makeModel, type Model } from '../helpers/model.js';
import { tempDir } from '../helpers/redline.js';

function readPart(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(length);
    return b.subarray(0, readSync(fd, b, 0, length, offset));
  } finally {
    closeSync(fd);
  }
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: Math.round((performance.now() - t0) * 100) / 100 };
}

describe('weights registry and matching', () => {
  const tmp = tempDir();
  const registry = new WeightRegistry();
  let model: Model;
  let original: WeightFile;
  const at = (p: string) => join(tmp.dir, p);

  before(() => {
    model = makeModel(at('model'), 24);
  });
  after(async () => {
    await closeHashers();
    tmp.cleanup();
  });

  test('only the weight file of the folder is registered; README, config, tokenizer are not', async () => {
    const res = await registry.registerPaths([model.dir]);
    assert.deepEqual(res.files.map((f) => f.path), [model.weights]);
    original = res.files[0] as WeightFile;
    assert.equal(original.fp.format, 'safetensors');
    assert.equal(original.fp.size, model.size);
    assert.equal(original.generation, 0);
    assert.equal(original.fp.samples.length, 16);
    for (const name of ['README.md', 'config.json', 'tokenizer.json']) assert.ok(res.skipped.some((s) => s.path === join(model.dir, name)), name);
    assert.equal(registry.byInode(original.fp.dev, original.fp.ino), original);
    assert.deepEqual(registry.byHead(original.fp.head), [original]);
  });

  test('the head helpers hash what fingerprint hashed, on the worker', async () => {
    assert.equal(await hashHead(model.weights), original.fp.head);
    assert.equal(await hashRange(model.weights, 0, HEAD_BYTES), original.fp.head);
    const s = original.fp.samples[7];
    assert.ok(s);
    assert.equal(await hashRange(model.weights, s.offset, s.length), s.hash);
    assert.equal(await hashRange(model.weights, model.size - 10, 20), null, 'past the end');
  });

  test('a full copy under another name (cp)', async (t) => {
    execFileSync('cp', [model.weights, at('x.dat')]);
    const { value: m, ms } = await timed(() => matchCandidate(at('x.dat'), registry));
    assert.equal(m?.kind, 'full');
    assert.equal(m?.source, original);
    assert.equal(m?.bytes, model.size);
    t.diagnostic(`full check of a 24 MiB copy: ${ms} ms`);
  });

  test('a copy in progress: nothing under 1 MiB, partial from its first MiB, full once complete', async (t) => {
    const whole = readFileSync(model.weights);
    writeFileSync(at('growing.bin'), whole.subarray(0, 512 << 10));
    assert.equal(await matchCandidate(at('growing.bin'), registry), null, 'not enough evidence yet');
    appendFileSync(at('growing.bin'), whole.subarray(512 << 10, HEAD_BYTES + 4096));
    const { value: m, ms } = await timed(() => matchCandidate(at('growing.bin'), registry));
    assert.equal(m?.kind, 'partial');
    assert.equal(m?.source, original);
    assert.equal(m?.bytes, HEAD_BYTES + 4096);
    t.diagnostic(`partial check at 1 MiB: ${ms} ms`);
    appendFileSync(at('growing.bin'), whole.subarray(HEAD_BYTES + 4096));
    assert.equal((await matchCandidate(at('growing.bin'), registry))?.kind, 'full');
  });

  test('a preallocated copy is partial until its end is written', async () => {
    const whole = readFileSync(model.weights);
    const fd = openSync(at('prealloc.bin'), 'w');
    writeSync(fd, whole, 0, whole.length - 100, 0);
    closeSync(fd);
    execFileSync('truncate', ['-s', String(whole.length), at('prealloc.bin')]);
    assert.equal((await matchCandidate(at('prealloc.bin'), registry))?.kind, 'partial');
  });

  test('a hard link is the same inode (ln)', async () => {
    execFileSync('ln', [model.weights, at('hl')]);
    const m = await matchCandidate(at('hl'), registry);
    assert.equal(m?.kind, 'hardlink');
    assert.equal(m?.source, original);
  });

  test('a tar of the folder holds the weights at a 512-byte boundary', async (t) => {
    execFileSync('tar', ['cf', at('m.tar'), '-C', tmp.dir, 'model']);
    const { value: m, ms } = await timed(() => matchCandidate(at('m.tar'), registry));
    assert.equal(m?.kind, 'archive');
    assert.equal(m?.source, original);
    assert.ok(m && m.offset > 0 && m.offset % 512 === 0);
    assert.deepEqual(readPart(at('m.tar'), m.offset, 4096), readPart(model.weights, 0, 4096));
    t.diagnostic(`archive scan of a ${statSync(at('m.tar')).size >> 20} MiB tar: ${ms} ms`);
  });

  test('a copy of a copy: the copy the writer read is the source, generation 2', async () => {
    execFileSync('cp', [model.weights, at('gen1.bin')]);
    const gen1 = registry.addCopy(at('gen1.bin'), await fingerprint(at('gen1.bin')), original, 'full');
    assert.equal(gen1.generation, 1);
    assert.equal(gen1.source, model.weights);
    execFileSync('cp', [at('gen1.bin'), at('gen2.bin')]);
    const m = await matchCandidate(at('gen2.bin'), registry, { preferSources: [at('gen1.bin')] });
    assert.equal(m?.kind, 'full');
    assert.equal(m?.source, gen1);
    const gen2 = registry.addCopy(at('gen2.bin'), await fingerprint(at('gen2.bin')), gen1, 'full');
    assert.equal(gen2.generation, 2);
    assert.equal(gen2.source, at('gen1.bin'));
    // without a hint, the closest to the original
    execFileSync('cp', [at('gen2.bin'), at('gen3.bin')]);
    assert.equal((await matchCandidate(at('gen3.bin'), registry))?.source, original);
    // a copy of a copy, caught in progress, names the preferred source too
    writeFileSync(at('gen3-part.bin'), readPart(at('gen2.bin'), 0, HEAD_BYTES + 1));
    const p = await matchCandidate(at('gen3-part.bin'), registry, { preferSources: [at('gen2.bin')] });
    assert.equal(p?.kind, 'partial');
    assert.equal(p?.source, gen2);
  });

  test('a renamed copy is still found by inode', async () => {
    renameSync(at('gen1.bin'), at('renamed.txt'));
    const m = await matchCandidate(at('renamed.txt'), registry);
    assert.equal(m?.kind, 'hardlink');
    assert.equal(m?.source.generation, 1);
    const st = statSync(at('renamed.txt'));
    assert.equal(registry.updatePath(st.dev, st.ino, at('renamed.txt'))?.path, at('renamed.txt'));
  });

  test('unrelated big files, a gzip of the folder and zeros are not the weights', async (t) => {
    const fd = openSync(at('random.bin'), 'w');
    for (let i = 0; i < 24; i++) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
    const { value: r, ms } = await timed(() => matchCandidate(at('random.bin'), registry));
    assert.equal(r, null);
    t.diagnostic(`no match in 24 MiB of random bytes (head + 16 MiB archive scan): ${ms} ms`);
    execFileSync('tar', ['czf', at('m.tgz'), '-C', tmp.dir, 'model']);
    assert.equal(await matchCandidate(at('m.tgz'), registry), null);
    writeFileSync(at('zeros.img'), Buffer.alloc(8 << 20));
    assert.equal(await matchCandidate(at('zeros.img'), registry), null);
  });

  test('a same-size copy with its header edited in place is still the weights', async () => {
    const b = readFileSync(model.weights);
    b.write('xx', 30, 'latin1'); // inside the JSON header
    writeFileSync(at('edited.bin'), b);
    const m = await matchCandidate(at('edited.bin'), registry);
    assert.equal(m?.kind, 'partial');
    assert.equal(m?.source, original);
  });

  test('races: vanished files, a FIFO, a folder: null, never a throw or a hang', async () => {
    assert.equal(await matchCandidate(at('nope'), registry), null);
    execFileSync('mkfifo', [at('fifo')]);
    assert.equal(await matchCandidate(at('fifo'), registry), null);
    assert.equal(await matchCandidate(tmp.dir, registry), null);
    writeFileSync(at('soon-gone.bin'), readPart(model.weights, 0, 2 * HEAD_BYTES));
    const pending = matchCandidate(at('soon-gone.bin'), registry);
    rmSync(at('soon-gone.bin'));
    const m = await pending;
    assert.ok(m === null || m.kind === 'partial');
    await assert.rejects(fingerprint(at('nope')), /ENOENT/);
  });
});

describe('registering --weights paths', () => {
  const tmp = tempDir();
  const at = (p: string) => join(tmp.dir, p);
  after(async () => {
    await closeHashers();
    tmp.cleanup();
  });

  test('explicit files always count; folders by format or size; one inode once; no symlinked folders', async () => {
    const model = makeModel(at('m'), 2);
    writeFileSync(at('m/notes.txt'), 'explicit, so registered');
    mkdirSync(at('m/sub/deeper'), { recursive: true });
    const gguf = Buffer.alloc(2 << 20);
    gguf.write('GGUF', 0, 'latin1');
    gguf.writeUInt32LE(3, 4);
    writeFileSync(at('m/sub/deeper/q4.gguf'), gguf);
    writeFileSync(at('m/sub/raw.bin'), Buffer.alloc(64 << 20, 1)); // unknown format, but 64 MiB
    symlinkSync(at('m'), at('m/sub/loop')); // a folder symlink: not followed
    mkdirSync(at('blobs'));
    execFileSync('cp', [model.weights, at('blobs/abc123')]);
    symlinkSync(at('blobs/abc123'), at('m/linked.safetensors')); // as in a Hugging Face snapshot
    const reg = new WeightRegistry();
    const res = await reg.registerPaths([at('m'), at('m/notes.txt'), model.weights, at('missing')]);
    assert.deepEqual(res.files.map((f) => f.path).sort(), [at('blobs/abc123'), model.weights, at('m/notes.txt'), at('m/sub/deeper/q4.gguf'), at('m/sub/raw.bin')].sort());
    assert.equal(res.files.find((f) => f.path.endsWith('q4.gguf'))?.fp.format, 'gguf');
    assert.ok(res.skipped.some((s) => s.path === model.weights && /same file/.test(s.reason)));
    assert.ok(res.skipped.some((s) => s.path === at('missing') && s.reason === 'ENOENT'));
    assert.ok(!res.files.some((f) => f.path.includes('/loop/')));
  });

  test('an idle hash pool never keeps the process alive', () => {
    const code = `import { fingerprint } from ${JSON.stringify(new URL('../../daemon/sensors/weights/fingerprint.ts', import.meta.url).href)};
      const fp = await fingerprint(${JSON.stringify(at('m/model.safetensors'))});
      console.log(fp.format);`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { timeout: 20_000, encoding: 'utf8' });
    assert.equal(out.trim(), 'safetensors');
  });
});
