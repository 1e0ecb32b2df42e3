import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { Chain, canonical, GENESIS, hashOf } from '../../daemon/outputs/chain.js';

describe('canonical', () => {
  it('sorts keys at every depth and leaves no whitespace', () => {
    assert.equal(canonical({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x y' } }), '{"a":{"c":"x y","d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('drops undefined fields, so a record and its parsed-back line encode alike', () => {
    const rec = { kind: 'alert', gone: undefined, when: new Date(0), list: [1, undefined], n: Number.NaN };
    const parsed = JSON.parse(JSON.stringify(rec));
    assert.equal(canonical(rec), canonical(parsed));
    assert.equal(canonical(rec), '{"kind":"alert","list":[1,null],"n":null,"when":"1970-01-01T00:00:00.000Z"}');
  });

  it('does not depend on the order fields were written in', () => {
    assert.equal(canonical({ x: 1, y: { b: 2, a: 1 } }), canonical({ y: { a: 1, b: 2 }, x: 1 }));
  });
});

describe('hashOf', () => {
  const rec = { seq: 3, time: 1000, kind: 'event', prev: GENESIS };

  it('covers prev and every other field, but not hash', () => {
    const h = hashOf(rec);
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.equal(hashOf({ ...rec, hash: 'anything' }), h);
    assert.notEqual(hashOf({ ...rec, prev: '1'.repeat(64) }), h);
    assert.notEqual(hashOf({ ...rec, kind: 'alert' }), h);
  });
});

describe('Chain', () => {
  it('starts at seq 0 after genesis and links each record to the one before', () => {
    const chain = new Chain();
    const a = chain.seal({ kind: 'daemon' });
    const b = chain.seal({ kind: 'event', time: 1234.9 });
    assert.equal(a.seq, 0);
    assert.equal(a.prev, GENESIS);
    assert.equal(a.hash, hashOf(a));
    assert.equal(b.seq, 1);
    assert.equal(b.prev, a.hash);
    assert.equal(b.time, 1234, 'fractional times are stored as integer ms');
    assert.deepEqual({ seq: chain.seq, head: chain.head }, { seq: 1, head: b.hash });
  });

  it('stamps the current time when none is given', () => {
    const before = Date.now();
    const r = new Chain().seal({ kind: 'daemon' });
    assert.ok(r.time >= before && r.time <= Date.now());
  });

  it('cannot be forked by fields that name seq, prev or hash', () => {
    const chain = new Chain();
    chain.seal({ kind: 'daemon' });
    const r = chain.seal({ kind: 'event', seq: 99, prev: GENESIS, hash: 'x' });
    assert.equal(r.seq, 1);
    assert.notEqual(r.prev, GENESIS);
    assert.equal(r.hash, hashOf(r));
  });

  it('continues an existing chain from its last record', () => {
    const first = new Chain();
    first.seal({ kind: 'daemon' });
    const last = first.seal({ kind: 'event' });
    const next = new Chain({ seq: last.seq, hash: last.hash }).seal({ kind: 'event' });
    assert.equal(next.seq, 2);
    assert.equal(next.prev, last.hash);
  });
});

test('a sealed line is encoded once: seq first, hash last, and its hash covers what a reader parses back', () => {
  const chain = new Chain();
  const { record, line } = chain.sealLine({ kind: 'alert', zeta: 1, count: 12n, text: 'a\uD800b', nested: { b: 2, a: [1, undefined] }, gone: undefined, time: 5.7 });
  assert.ok(line.startsWith('{"seq":0,'), line);
  assert.ok(line.endsWith(`,"hash":"${record.hash}"}\n`), line);
  const parsed = JSON.parse(line);
  assert.deepEqual(parsed, record);
  assert.equal(hashOf(parsed), record.hash);
  // what JSON cannot carry is what a reader gets back: a bigint's digits, U+FFFD for a lone surrogate
  assert.equal(parsed.count, '12');
  assert.equal(parsed.text, 'a\uFFFDb');
  assert.deepEqual(parsed.nested, { a: [1, null], b: 2 });
  assert.equal('gone' in parsed, false);
  assert.equal(parsed.time, 5);
});
