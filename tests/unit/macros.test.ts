import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandMacros, MacroCycleError } from '../../daemon/engine/macros.js';

const defs = new Map([
  ['outside', '!target.subject'],
  ['real', 'evt.sig != 0'],
  ['both', 'outside && real'],
]);

test('macros expand recursively inside parentheses', () => {
  assert.equal(expandMacros('both && proc.subject', defs), '((!target.subject) && (evt.sig != 0)) && proc.subject');
});

test('member names and string literals are never expanded', () => {
  assert.equal(expandMacros('proc.outside == "outside" && x.real', defs), 'proc.outside == "outside" && x.real');
  assert.equal(expandMacros("'real' + r\"both\"", defs), "'real' + r\"both\"");
});

test('a cycle is an error naming the path', () => {
  const cyc = new Map([['a', 'b'], ['b', 'a']]);
  assert.throws(() => expandMacros('a', cyc), (e: unknown) => e instanceof MacroCycleError && /a → b → a/.test((e as Error).message));
});

test('used macros are reported', () => {
  const used = new Set<string>();
  expandMacros('both', defs, used);
  assert.deepEqual([...used].sort(), ['both', 'outside', 'real']);
});
