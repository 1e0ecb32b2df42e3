// The README's first command: `redline demo` shows the alerts and the freeze.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { redline, type Run } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('redline demo', { skip: skip ?? false }, () => {
  let run: Run;
  let dir = '';
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('runs both phases and exits 0', async () => {
    run = await redline(['demo'], {}, 120_000);
    dir = /The logs stay in (\S+)\./.exec(run.stdout)?.[1] ?? '';
    assert.equal(run.code, 0, run.stderr);
  });

  test('observe mode: the agent reaches its last step and both attacks are reported', () => {
    const observe = run.stdout.split('── enforce')[0] ?? '';
    assert.match(observe, /agent reached step 5 of 5/);
    assert.match(observe, /ALERT \[critical\] process\.kill: .* sent SIGTERM to protected process sleep/);
    assert.match(observe, /ALERT \[critical\] monitor\.tamper: .* sent SIGTERM to the monitor/);
    assert.match(observe, /ACTION freeze: skipped \(observe mode\)/);
  });

  test('enforce mode: frozen at the kill, never reaches the monitor', () => {
    const enforce = run.stdout.split('── enforce')[1] ?? '';
    assert.match(enforce, /agent reached step 2 of 5/);
    assert.match(enforce, /ACTION freeze: done in [\d.]+ ms/);
    assert.match(enforce, /ACTION kill: done/);
    assert.match(enforce, /SNAPSHOT of \d+ frozen subject processes logged/);
    assert.doesNotMatch(enforce, /monitor\.tamper/);
  });
});
