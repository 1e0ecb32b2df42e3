// Text that arrives in chunks as lines: the sensors' and the guard's stdout, the watchdog's
// pipe both ways, the control socket, and log files read back. A line is handed over without
// its newline; the unfinished end waits for the next chunk. A peer that never sends a newline
// cannot grow memory: past `max` characters the unfinished line is dropped, and said.

export class LineSplitter {
  #rest = '';

  constructor(
    private readonly onLine: (line: string) => void,
    /** the longest unfinished line kept */
    private readonly max = 1 << 20,
    /** an unfinished line longer than `max` was dropped */
    private readonly onOverflow: (chars: number) => void = () => undefined,
  ) {}

  push(chunk: string): void {
    const text = this.#rest === '' ? chunk : this.#rest + chunk;
    const last = text.lastIndexOf('\n');
    if (last < 0) {
      this.#keep(text);
      return;
    }
    // the rest is kept first: a line whose handler throws loses only the lines after it in this chunk
    this.#keep(text.slice(last + 1));
    for (const line of text.slice(0, last).split('\n')) this.onLine(line);
  }

  /** what came after the last newline */
  get rest(): string {
    return this.#rest;
  }

  #keep(rest: string): void {
    if (rest.length <= this.max) this.#rest = rest;
    else {
      this.#rest = '';
      this.onOverflow(rest.length);
    }
  }
}

/**
 * The lines of a stream of text chunks (a file read in pieces), each with its newline and a
 * `\r` before it taken off; `last`: also the final piece with no newline after it (a torn last
 * record is the reader's to judge), else it is left out.
 */
export async function* linesOf(chunks: AsyncIterable<string | Buffer>, last: boolean): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of chunks) {
    const parts = (rest + (chunk as string)).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) yield p.endsWith('\r') ? p.slice(0, -1) : p;
  }
  if (last && rest !== '') yield rest.endsWith('\r') ? rest.slice(0, -1) : rest;
}
