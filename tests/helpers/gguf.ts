// A tiny but real llama.cpp model: a GGUF v3 file with architecture "llama", one block, F32
// weights from a fixed-seed PRNG and a SentencePiece-style ("llama") vocab. llama.cpp loads it
// and generates (nonsense) text with it, so a test can run a real inference engine on it.
// Layout (GGUF spec, ggml docs/gguf.md): header, metadata key/values, tensor infos, padding
// to general.alignment, then each tensor's data at an aligned offset. All little-endian.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

const ALIGN = 32; // general.alignment, the spec's default
const EMBD = 64; // llama.embedding_length
const HEADS = 2; // attention heads (and KV heads): head size 32
const FF = 128; // llama.feed_forward_length
const MIN_VOCAB = 300;

// GGUF metadata value types
const T_UINT32 = 4;
const T_INT32 = 5;
const T_FLOAT32 = 6;
const T_BOOL = 7;
const T_STRING = 8;
const T_ARRAY = 9;
// tokenizer.ggml.token_type values (llama.cpp's llama_token_type)
const TOK_NORMAL = 1;
const TOK_UNKNOWN = 2;
const TOK_CONTROL = 3;
const TOK_BYTE = 6;

// ---- tiny byte writers -------------------------------------------------------------------
const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
const i32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32LE(v); return b; };
const f32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeFloatLE(v); return b; };
const u64 = (v: number): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
/** a gguf_string: u64 byte length, then UTF-8 bytes (no terminator) */
const str = (s: string): Buffer => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([u64(b.length), b]); };

type Value =
  | { u32: number }
  | { f32: number }
  | { bool: boolean }
  | { str: string }
  | { strs: string[] }
  | { f32s: number[] }
  | { i32s: number[] };

/** one metadata key/value: key string, u32 type, then the value (arrays: elem type, u64 count, elems) */
function kv(key: string, v: Value): Buffer {
  const k = str(key);
  if ('u32' in v) return Buffer.concat([k, u32(T_UINT32), u32(v.u32)]);
  if ('f32' in v) return Buffer.concat([k, u32(T_FLOAT32), f32(v.f32)]);
  if ('bool' in v) return Buffer.concat([k, u32(T_BOOL), Buffer.from([v.bool ? 1 : 0])]);
  if ('str' in v) return Buffer.concat([k, u32(T_STRING), str(v.str)]);
  if ('strs' in v) return Buffer.concat([k, u32(T_ARRAY), u32(T_STRING), u64(v.strs.length), ...v.strs.map(str)]);
  if ('f32s' in v) return Buffer.concat([k, u32(T_ARRAY), u32(T_FLOAT32), u64(v.f32s.length), ...v.f32s.map(f32)]);
  return Buffer.concat([k, u32(T_ARRAY), u32(T_INT32), u64(v.i32s.length), ...v.i32s.map(i32)]);
}

/** deterministic PRNG (mulberry32) so every run writes the same bytes */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The vocab: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF> (llama.cpp looks up
 * "<0x0A>" for the newline token and falls back to bytes for anything else), some single
 * characters and word pieces, then filler words up to `size` tokens.
 */
function vocab(size: number): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOK_BYTE);
  }
  const words = ['▁', ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'.split('')];
  for (const w of ['the', 'a', 'is', 'of', 'and', 'to', 'in', 'hello', 'world', 'model', 'tiny']) words.push(`▁${w}`);
  for (let i = 0; tokens.length + words.length < size; i++) words.push(`▁w${i}`);
  for (const w of words) {
    tokens.push(w);
    types.push(TOK_NORMAL);
  }
  // SentencePiece scores: higher merges first; special and byte tokens get 0
  const scores = tokens.map((_, i) => (types[i] === TOK_NORMAL ? -i : 0));
  return { tokens, scores, types };
}

/**
 * Writes a loadable llama GGUF to `path`. `opts.mib` (default 8) grows the vocab so the file
 * is at least that many MiB (the token embedding and output matrices are vocab x 64 F32 each);
 * it never goes below a 300-token vocab (about 0.3 MiB).
 */
export function writeTinyGguf(path: string, opts: { mib?: number } = {}): void {
  const mib = opts.mib ?? 8;
  // 2 matrices of vocab x EMBD F32 = 512 bytes per token; the rest of the file is extra
  const nVocab = Math.max(MIN_VOCAB, Math.ceil((mib * 1024 * 1024) / (2 * EMBD * 4)));
  const { tokens, scores, types } = vocab(nVocab);

  const meta = [
    kv('general.architecture', { str: 'llama' }),
    kv('general.name', { str: 'tiny' }),
    kv('general.alignment', { u32: ALIGN }),
    kv('general.file_type', { u32: 0 }), // 0 = all F32
    kv('llama.context_length', { u32: 256 }),
    kv('llama.embedding_length', { u32: EMBD }),
    kv('llama.block_count', { u32: 1 }),
    kv('llama.feed_forward_length', { u32: FF }),
    kv('llama.attention.head_count', { u32: HEADS }),
    kv('llama.attention.head_count_kv', { u32: HEADS }),
    kv('llama.rope.dimension_count', { u32: EMBD / HEADS }),
    kv('llama.rope.freq_base', { f32: 10000 }),
    kv('llama.attention.layer_norm_rms_epsilon', { f32: 1e-5 }),
    kv('llama.vocab_size', { u32: tokens.length }),
    kv('tokenizer.ggml.model', { str: 'llama' }),
    kv('tokenizer.ggml.tokens', { strs: tokens }),
    kv('tokenizer.ggml.scores', { f32s: scores }),
    kv('tokenizer.ggml.token_type', { i32s: types }),
    kv('tokenizer.ggml.unknown_token_id', { u32: 0 }),
    kv('tokenizer.ggml.bos_token_id', { u32: 1 }),
    kv('tokenizer.ggml.eos_token_id', { u32: 2 }),
    kv('tokenizer.ggml.add_bos_token', { bool: true }),
    kv('tokenizer.ggml.add_eos_token', { bool: false }),
  ];

  // Tensor shapes in ggml order: ne[0] is the innermost (row length), so a matrix that maps
  // `in` features to `out` features is [in, out]. Norm weights are 1.0, the rest random.
  const n = tokens.length;
  const tensors: { name: string; dims: number[]; norm?: boolean }[] = [
    { name: 'token_embd.weight', dims: [EMBD, n] },
    { name: 'blk.0.attn_norm.weight', dims: [EMBD], norm: true },
    { name: 'blk.0.attn_q.weight', dims: [EMBD, EMBD] },
    { name: 'blk.0.attn_k.weight', dims: [EMBD, EMBD] },
    { name: 'blk.0.attn_v.weight', dims: [EMBD, EMBD] },
    { name: 'blk.0.attn_output.weight', dims: [EMBD, EMBD] },
    { name: 'blk.0.ffn_norm.weight', dims: [EMBD], norm: true },
    { name: 'blk.0.ffn_gate.weight', dims: [EMBD, FF] },
    { name: 'blk.0.ffn_up.weight', dims: [EMBD, FF] },
    { name: 'blk.0.ffn_down.weight', dims: [FF, EMBD] },
    { name: 'output_norm.weight', dims: [EMBD], norm: true },
    { name: 'output.weight', dims: [EMBD, n] },
  ];

  // tensor infos: name, n_dims, dims (u64 each), type (0 = F32), offset into the data section
  const pad = (x: number): number => Math.ceil(x / ALIGN) * ALIGN;
  let offset = 0;
  const infos = tensors.map((t) => {
    const info = Buffer.concat([str(t.name), u32(t.dims.length), ...t.dims.map(u64), u32(0), u64(offset)]);
    offset = pad(offset + t.dims.reduce((a, b) => a * b, 1) * 4);
    return info;
  });

  // header: magic "GGUF", version 3, tensor count, metadata count
  const head = Buffer.concat([Buffer.from('GGUF', 'ascii'), u32(3), u64(tensors.length), u64(meta.length), ...meta, ...infos]);

  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    writeSync(fd, Buffer.alloc(pad(head.length) - head.length)); // data section starts aligned
    const rand = prng(42);
    for (const t of tensors) {
      const count = t.dims.reduce((a, b) => a * b, 1);
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = t.norm ? 1 : (rand() - 0.5) * 0.1;
      const bytes = Buffer.from(data.buffer);
      writeSync(fd, bytes);
      writeSync(fd, Buffer.alloc(pad(bytes.length) - bytes.length)); // next tensor aligned
    }
  } finally {
    closeSync(fd);
  }
}
