// Signed seals over the hash chain (Ed25519). The chain alone shows an edit only when the
// hashes after it are left alone: whoever can write the log can edit a record and recompute
// every later hash. A seal is a record that signs the head of the chain (`head_seq`, the
// `head_hash` it ends on) with a key the subject cannot read; an edit before a seal then
// needs the key to hide.
//
// The signed bytes are one line of text, not JSON: nothing to canonicalise, and a verifier
// in any language rebuilds them from the record's fields:
//
//   redline-seal/1 KEY_ID HEAD_SEQ HEAD_HASH TIME NEXT_WITHIN
//
// NEXT_WITHIN is the seal's promise: the next seal comes within that many records. With it a
// verifier tells seals that were removed (and the chain re-hashed) from a log that simply
// stops: only the records after the last seal, fewer than its promise, are an "unsealed tail".

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';

export const SEAL_VERSION = 'redline-seal/1';
export const SEAL_ALG = 'ed25519';

/** what a seal record carries besides the chain's own fields */
export type SealFields = {
  kind: 'seal';
  /** why now: start, trial-end, stop, rotation, records, interval */
  reason: string;
  head_seq: number;
  head_hash: string;
  key_id: string;
  alg: typeof SEAL_ALG;
  next_within: number;
  /** base64 Ed25519 signature over sealMessage() */
  sig: string;
  time: number;
};

export interface SigningKey {
  key: KeyObject;
  keyId: string;
}

/** the first 16 hex digits of sha256 over the raw 32-byte public key */
export function keyIdOf(pub: KeyObject): string {
  const raw = Buffer.from(String(pub.export({ format: 'jwk' }).x), 'base64url');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function sealMessage(keyId: string, headSeq: number, headHash: string, time: number, nextWithin: number): Buffer {
  return Buffer.from(`${SEAL_VERSION} ${keyId} ${headSeq} ${headHash} ${time} ${nextWithin}`, 'utf8');
}

/** the seal over a chain whose last record is `head` (seq -1: nothing sealed yet) */
export function makeSeal(k: SigningKey, head: { seq: number; hash: string }, reason: string, nextWithin: number, time = Date.now()): SealFields {
  const sig = sign(null, sealMessage(k.keyId, head.seq, head.hash, time, nextWithin), k.key).toString('base64');
  return { kind: 'seal', reason, head_seq: head.seq, head_hash: head.hash, key_id: k.keyId, alg: SEAL_ALG, next_within: nextWithin, sig, time };
}

/** why `rec`'s signature fails under `pub`, or null when it holds */
export function sealSignatureProblem(rec: Record<string, unknown>, pub: KeyObject): string | null {
  const { head_seq, head_hash, key_id, next_within, sig, time } = rec;
  if (rec.alg !== SEAL_ALG) return `alg is ${JSON.stringify(rec.alg)}, not ${SEAL_ALG}`;
  if (typeof head_seq !== 'number' || typeof head_hash !== 'string' || typeof key_id !== 'string') return 'head_seq, head_hash or key_id is missing';
  if (typeof next_within !== 'number' || typeof time !== 'number' || typeof sig !== 'string') return 'next_within, time or sig is missing';
  let ok = false;
  try {
    ok = verify(null, sealMessage(key_id, head_seq, head_hash, time, next_within), pub, Buffer.from(sig, 'base64'));
  } catch {
    ok = false;
  }
  return ok ? null : 'the signature does not verify';
}

/**
 * Reads the private key once, at start. A key file others can read is refused: the subject
 * must not be able to sign (mode 0600, outside anything the subject can reach).
 */
export function readSigningKey(file: string): SigningKey {
  let text: string;
  let mode: number;
  try {
    const fd = openSync(file, 'r');
    try {
      mode = fstatSync(fd).mode;
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new Error(`--sign-key ${file}: cannot read it (${(e as Error).message})`);
  }
  if ((mode & 0o077) !== 0) throw new Error(`--sign-key ${file}: others can read it (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (e) {
    throw new Error(`--sign-key ${file}: not a private key in PEM (${(e as Error).message}); make one with redline keygen`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`--sign-key ${file}: an ${key.asymmetricKeyType} key; redline signs with Ed25519 (redline keygen)`);
  return { key, keyId: keyIdOf(createPublicKey(key)) };
}

export function readPublicKey(file: string): { key: KeyObject; keyId: string } {
  let key: KeyObject;
  try {
    key = createPublicKey(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`--pubkey ${file}: not a public key in PEM (${(e as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`--pubkey ${file}: an ${key.asymmetricKeyType} key, not Ed25519`);
  return { key, keyId: keyIdOf(key) };
}

/** writes FILE (the private key, 0600, never over an existing file) and FILE.pub; returns the key id */
export function generateKeyFiles(file: string): string {
  for (const f of [file, `${file}.pub`]) if (existsSync(f)) throw new Error(`${f} exists: redline keygen never overwrites a key`);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const write = (path: string, text: string, mode: number) => {
    const fd = openSync(path, 'wx', mode);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  };
  write(file, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
  write(`${file}.pub`, publicKey.export({ format: 'pem', type: 'spki' }).toString(), 0o644);
  return keyIdOf(publicKey);
}
