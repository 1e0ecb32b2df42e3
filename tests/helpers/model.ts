// A stand-in model folder: real safetensors framing around random tensor bytes, plus the
// small files every model folder has, and a serving script that maps the weights.
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

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
