// The replication scenario suite (tests/scenarios/suite/scenarios.ts): every scenario in
// observe mode (the expected categories) and in enforce mode (exit 3, frozen before any
// replica answers, the snapshot logged, the group killed after); benign work raises
// nothing at high or above and is never frozen. A miss is a failing test.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { prepareSuite, runScenario, type Suite } from './suite/runner.js';
import { SCENARIOS } from './suite/scenarios.js';

const skip = monitorSkipReason();

describe('replication scenarios', { skip: skip ?? false }, () => {
  let suite: Suite;
  before(() => {
    suite = prepareSuite(mkdtempSync(join(tmpdir(), 'redline-suite-')));
  });
  after(() => (process.env.KEEP ? undefined : suite?.cleanup()));

  for (const s of SCENARIOS) {
    for (const mode of ['observe', 'enforce'] as const) {
      test(`${s.family}: ${s.name} (${mode})`, async (t) => {
        const o = await runScenario(suite, s, mode);
        t.diagnostic(`categories: ${o.categories.join(', ') || 'none'}; detect ${o.detect_ms ?? '-'} ms; freeze ${o.freeze_ms ?? '-'} ms`);
        assert.deepEqual(o.problems, [], `${s.family}/${s.name} (${mode}) missed: ${o.problems.join('; ')}; log ${o.log}`);
      });
    }
  }
});
