// Weight formats from their first bytes (real headers, built here or captured from the
// tools that write them), and the sample plan's independence from names.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { samplePlan } from '../../daemon/sensors/weights/fingerprint.js';
import { detectFormat, FORMAT_BYTES } from '../../daemon/sensors/weights/format.js';

/** a whole safetensors file: u64 LE header length, the JSON header, the tensor bytes */
function safetensors(): Buffer {
  const tensors = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) tensors.writeUInt16LE(0x3c00, i * 2); // F16 1.0
  const header = Buffer.from(JSON.stringify({ __metadata__: { format: 'pt' }, w: { dtype: 'F16', shape: [2, 4], data_offsets: [0, 16] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, tensors]);
}

/** a GGUF v3 header: magic, version, tensor count, KV count, then general.architecture = "llama" */
function gguf(version = 3): Buffer {
  const str = (s: string) => {
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(s.length));
    return Buffer.concat([n, Buffer.from(s)]);
  };
  const fixed = Buffer.alloc(24);
  fixed.write('GGUF', 0, 'latin1');
  fixed.writeUInt32LE(version, 4);
  fixed.writeBigUInt64LE(0n, 8);
  fixed.writeBigUInt64LE(1n, 16);
  const type = Buffer.alloc(4);
  type.writeUInt32LE(8, 0); // GGUF_TYPE_STRING
  return Buffer.concat([fixed, str('general.architecture'), type, str('llama')]);
}

// torch.save's layout (archive/data.pkl, archive/version), written by Python's zipfile
const TORCH_ZIP = Buffer.from(
  'UEsDBBQAAAAAAGNYeF0XncrDEQAAABEAAAAQAAAAYXJjaGl2ZS9kYXRhLnBrbIACfXEAWAEAAAB3cQFLAXMuUEsDBBQAAAAAAGNYeF3RnmdVAgAAAAIAAAAPAAAAYXJjaGl2ZS92ZXJzaW9uMwpQSwECFAMUAAAAAABjWHhdF53KwxEAAAARAAAAEAAAAAAAAAAAAAAAgAEAAAAAYXJjaGl2ZS9kYXRhLnBrbFBLAQIUAxQAAAAAAGNYeF3RnmdVAgAAAAIAAAAPAAAAAAAAAAAAAACAAT8AAABhcmNoaXZlL3ZlcnNpb25QSwUGAAAAAAIAAgB7AAAAbgAAAAAA',
  'base64',
);
// pickle.dumps(OrderedDict(w=[1.0, 2.0]), protocol=2 / 4 / 5), first 40 bytes
const PICKLE_2 = Buffer.from('800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710158010000007771', 'hex');
const PICKLE_4 = Buffer.from('8004953d000000000000008c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493', 'hex');
const PICKLE_5 = Buffer.from('8005953d000000000000008c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493', 'hex');

test('safetensors: u64 header length, then a JSON object; the length in the detail', () => {
  const file = safetensors();
  const n = Number(file.readBigUInt64LE(0));
  assert.deepEqual(detectFormat(file.subarray(0, FORMAT_BYTES), file.length), { format: 'safetensors', detail: `header ${n} bytes` });
  assert.equal(detectFormat(file.subarray(0, FORMAT_BYTES)).format, 'safetensors', 'size unknown: a copy being written');
  const bad = Buffer.from(file);
  bad[8] = 0x5b; // '[' is not a header
  assert.equal(detectFormat(bad).format, 'unknown');
});

test('safetensors: an insane header length is not safetensors', () => {
  const file = safetensors();
  assert.equal(detectFormat(file, 40).format, 'unknown', 'header longer than the file');
  const huge = Buffer.from(file);
  huge.writeBigUInt64LE(1n << 40n, 0);
  assert.equal(detectFormat(huge).format, 'unknown');
  const tiny = Buffer.from(file);
  tiny.writeBigUInt64LE(1n, 0);
  assert.equal(detectFormat(tiny).format, 'unknown');
});

test('GGUF with its version', () => {
  assert.deepEqual(detectFormat(gguf(3)), { format: 'gguf', detail: 'version 3' });
  assert.deepEqual(detectFormat(gguf(2).subarray(0, 8)), { format: 'gguf', detail: 'version 2' });
  assert.equal(detectFormat(gguf(0)).format, 'unknown');
  assert.equal(detectFormat(Buffer.from('GGUF')).format, 'unknown', 'no room for a version');
});

test('PyTorch zip (torch.save layout) and legacy pickle protocols 2 to 5', () => {
  assert.equal(detectFormat(TORCH_ZIP).format, 'pytorch-zip');
  assert.deepEqual(detectFormat(PICKLE_2), { format: 'pickle', detail: 'protocol 2' });
  assert.deepEqual(detectFormat(PICKLE_4), { format: 'pickle', detail: 'protocol 4' });
  assert.deepEqual(detectFormat(PICKLE_5), { format: 'pickle', detail: 'protocol 5' });
  assert.equal(detectFormat(Buffer.from([0x80, 0x09])).format, 'unknown');
  // the end-of-central-directory record alone (an empty zip) holds no tensors
  assert.equal(detectFormat(Buffer.from('504b0506000000000000000000000000000000000000', 'hex')).format, 'unknown');
});

test('text, JSON, garbage and empty files are not weights', () => {
  assert.equal(detectFormat(Buffer.from('# README\nA model.\n')).format, 'unknown');
  assert.equal(detectFormat(Buffer.from('{"architectures": ["LlamaForCausalLM"], "hidden_size": 4096}')).format, 'unknown');
  assert.equal(detectFormat(createHash('sha512').update('garbage').digest()).format, 'unknown');
  assert.equal(detectFormat(Buffer.alloc(64)).format, 'unknown');
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
  assert.ok(plan.slice(0, 15).every((r) => r.length === 65536));
  assert.equal((plan[15]?.offset ?? 0) + (plan[15]?.length ?? 0), size, 'the last block holds the last byte');
  assert.deepEqual(samplePlan(1000), [{ offset: 0, length: 1000 }]);
  assert.deepEqual(samplePlan(0), []);
  // a small file gets fewer, distinct blocks; the last one may be short
  const small = samplePlan(3 * 65536 + 100);
  assert.deepEqual(small.map((r) => r.offset), [0, 65536, 131072, 196608]);
  assert.equal(small[3]?.length, 100);
});
