// `npm run scenarios [-- OUT.json] [--sensor poll]`: every scenario in both modes → a matrix of
// caught/missed with the detection latency, printed and written as JSON (scenarios.json, or
// the path given). Exit 1 when anything was missed. Needs root, bpftrace and cgroup v2 (the
// eBPF sensor); with --sensor poll, root and cgroup v2.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorSkipReason } from '../../helpers/host.js';
import { type Outcome, prepareSuite, runScenario } from './runner.js';
import { forPoll } from './poll-misses.js';
import { SCENARIOS } from './scenarios.js';

const why = monitorSkipReason();
if (why) {
  process.stderr.write(`scenarios: cannot run here: ${why}\n`);
  process.exit(2);
}
const args = process.argv.slice(2);
const sensorAt = args.indexOf('--sensor');
const sensor = sensorAt >= 0 && args[sensorAt + 1] === 'poll' ? 'poll' : 'ebpf';
if (sensorAt >= 0) args.splice(sensorAt, 2);
const out = resolve(args[0] ?? 'scenarios.json');
const suite = prepareSuite(mkdtempSync(join(tmpdir(), 'redline-suite-')));
const results: (Outcome & { expected_miss?: boolean })[] = [];
const cell = (o: (Outcome & { expected_miss?: boolean }) | undefined) => (!o ? '' : o.expected_miss ? 'expected miss' : o.caught ? `caught${o.detect_ms !== null ? ` ${o.detect_ms.toFixed(1)} ms` : ''}` : 'MISSED');
try {
  process.stdout.write(`${'scenario'.padEnd(40)} ${'observe'.padEnd(20)} enforce\n`);
  for (const s of SCENARIOS) {
    const row: (Outcome & { expected_miss?: boolean })[] = [];
    // with the poll, what it cannot see by design is taken out of what the run must show (poll-misses.ts)
    const { scenario, expectedMiss } = sensor === 'poll' ? forPoll(s) : { scenario: s, expectedMiss: undefined };
    const nothingLeft = scenario.expect.length === 0 && !scenario.benign;
    for (const mode of ['observe', 'enforce'] as const) {
      const o = await runScenario(suite, nothingLeft ? { ...scenario, trips: false } : scenario, mode, 'none', sensor);
      row.push(nothingLeft ? { ...o, caught: true, problems: [], expected_miss: true } : o);
    }
    results.push(...row);
    process.stdout.write(`${`${s.family}/${s.name}`.padEnd(40)} ${cell(row[0]).padEnd(20)} ${cell(row[1])}${row[1]?.freeze_ms != null ? ` (frozen ${row[1].freeze_ms.toFixed(1)} ms after the event)` : ''}\n`);
    for (const o of row) for (const p of o.problems) process.stdout.write(`    ${o.mode}: ${p}\n`);
    if (expectedMiss) process.stdout.write(`    expected with the poll: no ${expectedMiss.miss.join(', ')}: ${expectedMiss.why}\n`);
  }
} finally {
  suite.cleanup();
}
const missed = results.filter((r) => !r.caught);
writeFileSync(out, `${JSON.stringify({ generated: new Date().toISOString(), sensor, scenarios: SCENARIOS.length, runs: results.length, missed: missed.length, results: results.map(({ log: _log, ...r }) => r) }, null, 2)}\n`);
process.stdout.write(`\n${results.length - missed.length} of ${results.length} runs caught what they must; matrix written to ${out}\n`);
process.exit(missed.length > 0 ? 1 : 0);
