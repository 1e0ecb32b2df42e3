// The replication scenario suite with the poll sensor (`exec --sensor poll`: no bpftrace,
// /proc every 100 ms). Every scenario in both modes, judged as with eBPF, except for what a
// poll cannot see by design: those categories are listed below with the reason, taken out of
// what the run must show, and reported (never hidden) in the test's diagnostics. A miss not in
// this list fails. Benign work must stay quiet and unfrozen as with eBPF.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCgroupV2Mount } from '../../daemon/cgroup.js';
import { alertsOf, readLog } from '../helpers/redline.js';
import { prepareSuite, runScenario, type Suite } from './suite/runner.js';
import { forPoll } from './suite/poll-misses.js';
import { SCENARIOS } from './suite/scenarios.js';

const skip = process.getuid?.() !== 0 ? 'needs root (the scenarios run subjects as other users and write to /etc/cron.d)' : !findCgroupV2Mount() ? 'needs a cgroup v2 mount' : false;

describe('replication scenarios, poll sensor', { skip }, () => {
  let suite: Suite;
  before(() => {
    suite = prepareSuite(mkdtempSync(join(tmpdir(), 'redline-suite-')));
  });
  after(() => (process.env.KEEP ? undefined : suite?.cleanup()));

  for (const s of SCENARIOS) {
    const { scenario, expectedMiss } = forPoll(s);
    for (const mode of ['observe', 'enforce'] as const) {
      test(`${s.family}: ${s.name} (${mode}, poll)`, async (t) => {
        if (scenario.expect.length === 0 && !scenario.benign) {
          // nothing left that the poll can see: the run must still end cleanly, watched by the poll
          const o = await runScenario(suite, { ...scenario, benign: false, trips: false }, mode, 'none', 'poll');
          const records = readLog(o.log);
          assert.equal(records.find((r) => r.kind === 'trial' && r.phase === 'start')?.sensor, 'poll');
          assert.ok(o.exit === 0 || o.exit === 3, `exit ${o.exit}`);
          t.diagnostic(`expected miss of ${expectedMiss?.miss.join(', ')}: ${expectedMiss?.why}; alerts: ${alertsOf(records).map((a) => a.category).join(', ') || 'none'}`);
          return;
        }
        const o = await runScenario(suite, scenario, mode, 'none', 'poll');
        if (expectedMiss) t.diagnostic(`expected miss of ${expectedMiss.miss.join(', ')}: ${expectedMiss.why}`);
        t.diagnostic(`categories: ${o.categories.join(', ') || 'none'}; detect ${o.detect_ms ?? '-'} ms; freeze ${o.freeze_ms ?? '-'} ms`);
        assert.deepEqual(o.problems, [], `${s.family}/${s.name} (${mode}, poll) missed: ${o.problems.join('; ')}; log ${o.log}`);
      });
    }
  }
});
