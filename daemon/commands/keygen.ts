// `redline keygen FILE`: an Ed25519 key pair for --sign-key (FILE, 0600) and audit --pubkey
// (FILE.pub). An existing file is never overwritten: a lost private key is the seals' end.
import { generateKeyFiles } from '../outputs/seal.js';

interface TextSink {
  write(chunk: string): unknown;
}

export function keygenCommand(file: string, out: TextSink = process.stdout, err: TextSink = process.stderr): number {
  try {
    const keyId = generateKeyFiles(file);
    out.write(`private key ${file} (0600: keep it where the subject cannot read it)\npublic key ${file}.pub (give it to audit --pubkey)\nkey id ${keyId}\n`);
    return 0;
  } catch (e) {
    err.write(`redline keygen: ${(e as Error).message}\n`);
    return 2;
  }
}
