// A stand-in model folder: real safetensors framing around random tensor bytes, plus the
// small files every model folder has, and a serving script that maps the weights.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Model {
  dir: string;
  weights: string;
  size: number;
  serve: string;
}

export function makeModel(dir: string, mib = 48): Model {
  mkdirSync(dir, { recursive: true });
  const header = Buffer.from(JSON.stringify({ __metadata__: { format: 'pt' }, 'lm_head.weight': { dtype: 'F16', shape: [mib * 512, 1024], data_offsets: [0, mib * 1024 * 1024] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const weights = join(dir, 'model.safetensors');
  const fd = openSync(weights, 'w');
  writeSync(fd, len);
  writeSync(fd, header);
  for (let i = 0; i < mib; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], hidden_size: 1024 }, null, 2));
  writeFileSync(join(dir, 'README.md'), '# test-model\nA stand-in model for redline tests.\n');
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { a: 0 } } }));
  const serve = join(dir, 'serve.py');
  // maps the weights and keeps them mapped, as an inference server does
  writeFileSync(
    serve,
    ['import mmap, sys, time', 'f = open(sys.argv[1], "rb")', 'm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)', 'total = sum(m[i] for i in range(0, len(m), 1 << 20))', 'time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 3)'].join('\n'),
  );
  return { dir, weights, size: 8 + header.length + mib * (1 << 20), serve };
}

export type WeightsFormat = 'safetensors' | 'gguf' | 'pytorch-zip';

/**
 * One weights file of `mib` MiB of random tensor data in a real container format:
 * safetensors (JSON header), GGUF v3 (one key, one F16 tensor, 32-byte aligned data), or a
 * torch.save zip (data.pkl and one storage entry, stored uncompressed as torch writes it).
 */
export function makeWeights(path: string, format: WeightsFormat, mib: number): string {
  mkdirSync(dirname(path), { recursive: true });
  if (format === 'pytorch-zip') {
    execFileSync('python3', [
      '-c',
      [
        'import os, sys, zipfile',
        'path, mib = sys.argv[1], int(sys.argv[2])',
        'with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:',
        '    z.writestr("archive/data.pkl", b"\\x80\\x02}q\\x00X\\x0e\\x00\\x00\\x00lm_head.weightq\\x01.")',
        '    z.writestr("archive/version", b"3\\n")',
        '    with z.open("archive/data/0", "w", force_zip64=True) as f:',
        '        for _ in range(mib): f.write(os.urandom(1 << 20))',
      ].join('\n'),
      path,
      String(mib),
    ]);
    return path;
  }
  const fd = openSync(path, 'w');
  if (format === 'safetensors') {
    const header = Buffer.from(JSON.stringify({ 'lm_head.weight': { dtype: 'F16', shape: [mib * 512, 1024], data_offsets: [0, mib << 20] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeSync(fd, len);
    writeSync(fd, header);
  } else {
    const parts: Buffer[] = [];
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n);
      parts.push(b);
    };
    const u64 = (n: number) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt(n));
      parts.push(b);
    };
    const str = (s: string) => {
      u64(Buffer.byteLength(s));
      parts.push(Buffer.from(s));
    };
    parts.push(Buffer.from('GGUF'));
    u32(3);
    u64(1); // tensors
    u64(1); // key/values
    str('general.architecture');
    u32(8); // string
    str('llama');
    str('output.weight');
    u32(1); // dimensions
    u64(mib * 512 * 1024);
    u32(1); // F16
    u64(0); // offset in the data section
    const head = Buffer.concat(parts);
    writeSync(fd, head);
    writeSync(fd, Buffer.alloc((32 - (head.length % 32)) % 32));
  }
  for (let i = 0; i < mib; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  return path;
}
