// Weight formats from their first bytes, and the sample plan's independence from names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { samplePlan } from '../../daemon/sensors/weights/fingerprint.js';
import { detectFormat } from '../../daemon/sensors/weights/format.js';

function safetensors(): Buffer {
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, Buffer.alloc(8)]);
}

test('safetensors: u64 header length, then a JSON object', () => {
  assert.equal(detectFormat(safetensors()).format, 'safetensors');
  const bad = safetensors();
  bad[8] = 0x5b; // '[' is not a header
  assert.equal(detectFormat(bad).format, 'unknown');
});

test('GGUF with its version', () => {
  const b = Buffer.alloc(16);
  b.write('GGUF', 0, 'latin1');
  b.writeUInt32LE(3, 4);
  assert.deepEqual(detectFormat(b), { format: 'gguf', detail: 'version 3' });
});

test('PyTorch zip and legacy pickle', () => {
  assert.equal(detectFormat(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0])).format, 'pytorch-zip');
  assert.equal(detectFormat(Buffer.from([0x80, 0x02, 0x8a, 0x0a])).format, 'pickle');
  assert.equal(detectFormat(Buffer.from([0x80, 0x09])).format, 'unknown');
});

test('text, JSON and empty files are not weights', () => {
  assert.equal(detectFormat(Buffer.from('# README\n')).format, 'unknown');
  assert.equal(detectFormat(Buffer.from('{"hidden_size": 4096}')).format, 'unknown');
  assert.equal(detectFormat(Buffer.alloc(0)).format, 'unknown');
});

test('the sample plan depends on the size alone: 16 aligned blocks spread over the file', () => {
  const size = 10 * 2 ** 30 + 12345;
  const plan = samplePlan(size);
  assert.equal(plan.length, 16);
  assert.deepEqual(plan, samplePlan(size));
  assert.equal(plan[0]?.offset, 0);
  for (const r of plan) {
    assert.equal(r.offset % 65536, 0);
    assert.ok(r.offset + r.length <= size);
  }
  assert.ok((plan[15]?.offset ?? 0) > size - 2 * 65536);
  assert.deepEqual(samplePlan(1000), [{ offset: 0, length: 1000 }]);
});
