// Start-up as steps, each with its teardown (daemon/monitor/steps.ts): teardowns run last
// first; one that fails is reported and the others still run; a start that fails undoes the
// steps before it and nothing after.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Steps } from '../../daemon/monitor/steps.js';

test('teardowns run in reverse order, each once, with what its step returned', async () => {
  const steps = new Steps();
  const done: string[] = [];
  const a = await steps.run('a', () => 'first', (v) => done.push(`a:${v}`));
  await steps.run('b', async () => 2, (v) => done.push(`b:${v}`));
  steps.add('c', () => done.push('c'));
  assert.equal(a, 'first');
  await steps.teardown(() => assert.fail('nothing fails'));
  assert.deepEqual(done, ['c', 'b:2', 'a:first']);
  await steps.teardown(() => undefined);
  assert.equal(done.length, 3, 'a second teardown has nothing left to undo');
});

test('a step that fails leaves only the ones before it to undo; a teardown that throws is reported and the rest still run', async () => {
  const steps = new Steps();
  const done: string[] = [];
  const reported: string[] = [];
  await steps.run('sensor', () => undefined, () => done.push('sensor stopped'));
  await steps.run('ports', () => undefined, () => {
    throw new Error('already gone');
  });
  await assert.rejects(steps.run('websocket', () => Promise.reject(new Error('port in use')), () => done.push('websocket stopped')), /port in use/);
  await steps.teardown((name, err) => reported.push(`${name}: ${(err as Error).message}`));
  assert.deepEqual(done, ['sensor stopped'], 'the failed step had nothing to undo');
  assert.deepEqual(reported, ['ports: already gone']);
});
