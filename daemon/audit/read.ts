// Reads audit logs line by line (they can be large). A line that is not JSON is data
// for the verifier, not an exception: it is where the chain breaks. A file that cannot
// be read at all is an exception, which `redline audit` turns into exit 2.

import { open } from 'node:fs/promises';
import { linesOf as splitLines } from '../lines.js';

interface LineBase {
  file: string;
  /** 1-based line number within `file` */
  line: number;
  text: string;
}

export type LogLine = (LineBase & { parsed: true; value: unknown }) | (LineBase & { parsed: false; error: string });

export class UnreadableLogError extends Error {
  readonly file: string;
  readonly code: string;

  constructor(file: string, cause: unknown) {
    const err = cause as NodeJS.ErrnoException | undefined;
    super(`cannot read ${file}: ${err?.message ?? String(cause)}`, { cause });
    this.name = 'UnreadableLogError';
    this.file = file;
    this.code = typeof err?.code === 'string' ? err.code : 'EUNKNOWN';
  }
}

export function parseLine(file: string, line: number, text: string): LogLine {
  try {
    return { file, line, text, parsed: true, value: JSON.parse(text) };
  } catch (e) {
    return { file, line, text, parsed: false, error: e instanceof Error ? e.message : String(e) };
  }
}

async function* linesOf(file: string): AsyncGenerator<LogLine> {
  let stream: AsyncIterable<string>;
  try {
    const fh = await open(file, 'r');
    // A folder opens fine on Linux and only fails on read; say so up front.
    if ((await fh.stat()).isDirectory()) {
      await fh.close();
      throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    }
    stream = fh.createReadStream({ encoding: 'utf8' });
  } catch (e) {
    throw new UnreadableLogError(file, e);
  }
  let n = 0;
  const lines = splitLines(stream, true);
  for (;;) {
    let next: IteratorResult<string>;
    try {
      next = await lines.next();
    } catch (e) {
      throw new UnreadableLogError(file, e);
    }
    if (next.done) return;
    n++;
    // Blank lines carry no record (a trailing newline, the end of a torn line);
    // a record blanked out still shows up as a gap in seq.
    if (next.value.trim() !== '') yield parseLine(file, n, next.value);
  }
}

/** every non-blank line of `files`, in the order given; throws UnreadableLogError */
export async function* readLogLines(files: readonly string[]): AsyncGenerator<LogLine> {
  for (const file of files) yield* linesOf(file);
}

/** readLogLines, collected (tests, small logs) */
export async function readLogs(files: readonly string[]): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of readLogLines(files)) out.push(l);
  return out;
}
