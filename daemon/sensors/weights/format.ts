// The weight file format, from its first bytes. Pure. Names and extensions are never
// consulted: a subject can call a copy anything.

export type WeightFormat = 'safetensors' | 'gguf' | 'pytorch-zip' | 'pickle' | 'unknown';

export interface FormatInfo {
  format: WeightFormat;
  /** safetensors: JSON header length; gguf: version; pickle: protocol */
  detail?: string;
}

/** how many leading bytes detectFormat needs */
export const FORMAT_BYTES = 64;

// a safetensors header is JSON describing the tensors; 100 MB is far beyond any real one,
// and the bound keeps eight random bytes followed by `{` from passing as a header length
const MAX_SAFETENSORS_HEADER = 100_000_000;
// GGUF is at version 3; a u32 beyond this is some other file that happens to start "GGUF"
const MAX_GGUF_VERSION = 1000;

/**
 * `size`, when known, rules out a safetensors header longer than the file itself.
 * A file still being written may be shorter than its header says: the check only applies
 * to the registered weights, whose size is final, so callers pass it only then.
 */
export function detectFormat(head: Uint8Array, size?: number): FormatInfo {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 9 && b[8] === 0x7b /* { */) {
    const n = b.readBigUInt64LE(0);
    const fits = size === undefined || n + 8n <= BigInt(size);
    if (n >= 2n && n <= BigInt(MAX_SAFETENSORS_HEADER) && fits) return { format: 'safetensors', detail: `header ${n} bytes` };
  }
  if (b.length >= 8 && b.toString('latin1', 0, 4) === 'GGUF') {
    const v = b.readUInt32LE(4);
    if (v >= 1 && v <= MAX_GGUF_VERSION) return { format: 'gguf', detail: `version ${v}` };
  }
  // torch.save since 1.6 writes a zip archive (data.pkl plus one entry per storage)
  if (b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) return { format: 'pytorch-zip' };
  // legacy torch.save: a pickle stream opened by PROTO; protocols 0/1 have no marker to check
  const proto = b[1] ?? 0;
  if (b.length >= 2 && b[0] === 0x80 && proto >= 2 && proto <= 5) return { format: 'pickle', detail: `protocol ${proto}` };
  return { format: 'unknown' };
}
