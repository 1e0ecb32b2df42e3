// The replication, evasion, kill and benign families inside namespaces, as a container runs
// an agent: its own mount, pid, net and uts namespaces (the kill family keeps the host's pid
// namespace, as `docker --pid=host` does: in its own it could not name a host pid at all).
// Observe mode shows the expected categories; enforce mode freezes before any replica
// answers; benign work is never frozen. The whole suite runs so with SCENARIO_NS=1.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { prepareSuite, runScenario, type Suite } from './suite/runner.js';
import { SCENARIOS } from './suite/scenarios.js';

const PICKED = ['study/copy-and-serve', 'study/gguf-replica-on-gpu', 'evasion/tmpfs', 'kill/kill-original-server', 'benign/http-server', 'benign/shell-habits'];
const skip = monitorSkipReason() ?? (spawnSync('unshare', ['--mount', '--pid', '--net', '--uts', '--fork', 'true']).status === 0 ? null : 'unshare cannot make mount, pid, net and uts namespaces here');

describe('replication scenarios inside namespaces', { skip: skip ?? false }, () => {
  let suite: Suite;
  before(() => {
    suite = prepareSuite(mkdtempSync(join(tmpdir(), 'redline-suite-ns-')));
  });
  after(() => (process.env.KEEP ? undefined : suite?.cleanup()));

  const picked = SCENARIOS.filter((s) => PICKED.includes(`${s.family}/${s.name}`));
  test('every picked scenario exists', () => assert.equal(picked.length, PICKED.length));
  for (const s of picked) {
    for (const mode of ['observe', 'enforce'] as const) {
      test(`${s.family}: ${s.name} in namespaces (${mode})`, async (t) => {
        const o = await runScenario(suite, s, mode, s.family === 'kill' ? 'shared-pid' : 'all');
        t.diagnostic(`categories: ${o.categories.join(', ') || 'none'}; detect ${o.detect_ms ?? '-'} ms; freeze ${o.freeze_ms ?? '-'} ms`);
        assert.deepEqual(o.problems, [], `${s.family}/${s.name} (${mode}, namespaces) missed: ${o.problems.join('; ')}; log ${o.log}`);
      });
    }
  }
});
