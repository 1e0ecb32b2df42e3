// The weight file format, from its first bytes. Pure.

export type WeightFormat = 'safetensors' | 'gguf' | 'pytorch-zip' | 'pickle' | 'unknown';

export interface FormatInfo {
  format: WeightFormat;
  detail?: string;
}

// a safetensors header is JSON describing the tensors; 100 MB is far beyond any real one
const MAX_SAFETENSORS_HEADER = 100_000_000;

export function detectFormat(head: Buffer): FormatInfo {
  if (head.length >= 9) {
    const n = head.readBigUInt64LE(0);
    if (n >= 2n && n <= BigInt(MAX_SAFETENSORS_HEADER) && head[8] === 0x7b /* { */) return { format: 'safetensors', detail: `header ${n} bytes` };
  }
  if (head.length >= 8 && head.toString('latin1', 0, 4) === 'GGUF') return { format: 'gguf', detail: `version ${head.readUInt32LE(4)}` };
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return { format: 'pytorch-zip' };
  if (head.length >= 2 && head[0] === 0x80 && (head[1] ?? 0) >= 2 && (head[1] ?? 0) <= 5) return { format: 'pickle', detail: `protocol ${head[1]}` };
  return { format: 'unknown' };
}
