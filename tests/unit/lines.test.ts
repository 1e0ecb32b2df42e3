// Lines out of chunks, as every child's stdout, the watchdog's pipe and the control socket are
// read: split anywhere, a line across chunks, a peer that never sends a newline, a handler that throws.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LineSplitter, linesOf } from '../../daemon/lines.js';

describe('LineSplitter', () => {
  test('every line once, in order, however the text is cut into chunks', () => {
    const text = 'alpha\nbeta\n\ngamma delta\nepsilon\n';
    for (let cut = 1; cut < text.length; cut++) {
      const got: string[] = [];
      const s = new LineSplitter((l) => got.push(l));
      for (let i = 0; i < text.length; i += cut) s.push(text.slice(i, i + cut));
      assert.deepEqual(got, ['alpha', 'beta', '', 'gamma delta', 'epsilon'], `chunks of ${cut}`);
      assert.equal(s.rest, '');
    }
  });

  test('an unfinished line waits; past the limit it is dropped and said, and the next lines still come', () => {
    const got: string[] = [];
    const over: number[] = [];
    const s = new LineSplitter((l) => got.push(l), 10, (n) => over.push(n));
    s.push('abc');
    assert.deepEqual(got, []);
    assert.equal(s.rest, 'abc');
    s.push('defghijklmnop');
    assert.deepEqual(over, [16]);
    assert.equal(s.rest, '');
    s.push('ok\n');
    assert.deepEqual(got, ['ok']);
  });

  test('a handler that throws loses nothing after this chunk', () => {
    const got: string[] = [];
    const s = new LineSplitter((l) => {
      if (l === 'bad') throw new Error('no');
      got.push(l);
    });
    assert.throws(() => s.push('bad\nlost-with-it\nhalf'));
    s.push(' line\nnext\n');
    assert.deepEqual(got, ['half line', 'next']);
  });
});

describe('linesOf', () => {
  async function* chunks(...parts: string[]) {
    yield* parts;
  }
  test('lines across chunks, \\r taken off; the last piece only when asked for', async () => {
    const all = async (last: boolean) => {
      const out: string[] = [];
      for await (const l of linesOf(chunks('a\r\nb', 'c\nd', 'e'), last)) out.push(l);
      return out;
    };
    assert.deepEqual(await all(true), ['a', 'bc', 'de']);
    assert.deepEqual(await all(false), ['a', 'bc']);
  });
});
