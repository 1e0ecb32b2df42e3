// The rule engine on inline YAML: compile once, index by event type, exceptions, dedup,
// and load errors as data with file:line:col.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { compile, requiresWrite } from '../../daemon/engine/compiler.js';
import { loadRules } from '../../daemon/engine/load.js';
import { readRuleText } from '../../daemon/engine/reader.js';
import { Ruleset } from '../../daemon/engine/ruleset.js';
import type { LoadProblem, SensorEvent } from '../../daemon/events.js';
import type { Enriched, ProcInfo } from '../../daemon/process-table.js';

function load(yaml: string, file = 'pack.yaml') {
  const problems: LoadProblem[] = [];
  const items = readRuleText(file, yaml, problems);
  const res = compile(items);
  problems.push(...res.problems);
  return { rules: res.rules, errors: problems.filter((p) => p.severity === 'error'), warnings: problems.filter((p) => p.severity === 'warning') };
}

function proc(pid: number, over: Partial<ProcInfo> = {}): ProcInfo {
  return {
    key: `${pid}:1`, pid, start: 1, ppid: 1, pgid: pid, sid: pid, uid: 0, comm: 'sh', exe: '/bin/sh', args: ['sh'], parent: null,
    subject: true, allowed: false, protected: false, monitor: false, replica: false, loadedWeights: false, replicaGen: 0, readWeights: false, alive: true, known: true, children: new Set(), ...over,
  };
}

function signal(sender: ProcInfo, target: ProcInfo, sig = 9, time = 1000): Enriched {
  const event: SensorEvent = { type: 'signal', time, pid: sender.pid, syscall: 'kill', target_pid: target.pid, sig };
  return { event, proc: sender, target, targets: [target], broadcast: false, group: 0 };
}

const PACK = `
- list: shells
  items: [sh, bash]
- macro: outside
  condition: "!target.subject"
- rule: kill-outside
  description: signals outside the tree
  category: process.kill
  severity: high
  events: [signal]
  condition: proc.subject && outside && evt.sig != 0
  summary: "{proc.comm} ({proc.pid}) sent {evt.sig_name} to {target.comm} ({target.pid})"
  actions: [freeze]
  exceptions:
    - name: shells-may-probe
      condition: proc.comm in shells && evt.sig == 18
- exception: site-allow
  rule: kill-outside
  condition: target.comm == "allowed-victim"
`;

describe('compiling and evaluating', () => {
  const { rules, errors, warnings } = load(PACK);
  const rs = new Ruleset(rules);

  test('a good pack compiles without problems', () => {
    assert.deepEqual(errors, []);
    assert.deepEqual(warnings, []);
    assert.equal(rules.length, 1);
  });

  test('a match fills the summary template', () => {
    const m = rs.evaluate(signal(proc(10), proc(20, { subject: false, comm: 'sleep' })));
    assert.equal(m.length, 1);
    assert.equal(m[0]?.summary, 'sh (10) sent SIGKILL to sleep (20)');
  });

  test('signals inside the tree do not match', () => {
    assert.equal(rs.evaluate(signal(proc(10), proc(11))).length, 0);
  });

  test('inline and separate exceptions suppress', () => {
    assert.equal(rs.evaluate(signal(proc(12), proc(21, { subject: false }), 18)).length, 0);
    assert.equal(rs.evaluate(signal(proc(13), proc(22, { subject: false, comm: 'allowed-victim' }))).length, 0);
  });

  test('rules run only for their event types', () => {
    const exec: Enriched = { event: { type: 'exec', time: 1, pid: 10, filename: '/bin/sh' }, proc: proc(10), target: null, targets: [], broadcast: false, group: 0 };
    assert.equal(rs.has('exec'), false);
    assert.equal(rs.evaluate(exec).length, 0);
  });

  test('one noisy process is de-duplicated within the window, and the count is carried', () => {
    const r2 = new Ruleset(rules);
    const sender = proc(30);
    const victim = proc(40, { subject: false });
    assert.equal(r2.evaluate(signal(sender, victim, 9, 1000)).length, 1);
    for (let i = 0; i < 50; i++) assert.equal(r2.evaluate(signal(sender, victim, 9, 1001 + i)).length, 0);
    // another process is not hidden by the first one's window
    assert.equal(r2.evaluate(signal(proc(31), victim, 9, 1100)).length, 1);
    const later = r2.evaluate(signal(sender, victim, 9, 12_000));
    assert.equal(later.length, 1);
    assert.equal(later[0]?.suppressed, 50);
  });
});

describe('load errors are data with file:line:col', () => {
  const base = (extra: string) => `- rule: r1
  description: d
  category: process.kill
  severity: high
  events: [signal]
  summary: s
${extra}`;

  test('YAML syntax error', () => {
    const { errors } = load('- rule: [unclosed\n  x: 1\n');
    assert.ok(errors.length > 0);
    assert.equal(errors[0]?.code, 'yaml');
    assert.equal(errors[0]?.file, 'pack.yaml');
    assert.ok((errors[0]?.line ?? 0) >= 1);
  });

  test('unknown key, at the key', () => {
    const { errors } = load(base('  condition: proc.subject\n  severty: high\n'));
    assert.equal(errors.length, 1);
    assert.deepEqual([errors[0]?.line, errors[0]?.col], [8, 3]);
    assert.match(errors[0]?.message ?? '', /unknown key "severty"/);
  });

  test('unknown category, at the value', () => {
    const { errors } = load(base('  condition: proc.subject\n').replace('process.kill', 'process.murder'));
    assert.equal(errors.length, 1);
    assert.deepEqual([errors[0]?.line, errors[0]?.col], [3, 13]);
    assert.match(errors[0]?.message ?? '', /process\.murder/);
  });

  test('bad CEL points into the condition', () => {
    const { errors } = load(base('  condition: proc.subject && (evt.sig ==\n'));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.code, 'cel');
    assert.equal(errors[0]?.line, 7);
    assert.ok((errors[0]?.col ?? 0) >= 14);
  });

  test('unknown field in a condition, at the field', () => {
    const { errors } = load(base('  condition: proc.subject && proc.colour == "red"\n'));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.line, 7);
    assert.match(errors[0]?.message ?? '', /colour/);
  });

  test('unknown field in a summary template', () => {
    const { errors } = load(base('  condition: proc.subject\n').replace('summary: s', 'summary: "{proc.nope} did it"'));
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.message ?? '', /unknown field "\{proc\.nope\}"/);
  });

  test('a condition that is not a bool', () => {
    const { errors } = load(base('  condition: proc.pid + 1\n'));
    assert.match(errors[0]?.message ?? '', /must be a bool/);
  });

  test('missing required keys name them', () => {
    const { errors } = load('- rule: r1\n  description: d\n');
    assert.match(errors[0]?.message ?? '', /missing required keys "category", "severity", "events", "condition", "summary"/);
  });

  test('warnings: unused macro, unused list, rule with no event type', () => {
    const { errors, warnings } = load(`- macro: never
  condition: proc.subject
- list: nobody_uses
  items: [a]
${base('  condition: proc.subject\n').replace('events: [signal]', 'events: []')}`);
    assert.deepEqual(errors, []);
    const codes = warnings.map((w) => w.code).sort();
    assert.deepEqual(codes, ['no-events', 'unused-list', 'unused-macro']);
  });

  test('a disabled rule is not compiled into the set', () => {
    const { rules } = load(`${base('  condition: proc.subject\n')}- rule: r1\n  enabled: false\n`);
    assert.equal(rules.length, 0);
  });
});

describe('which rules need read-only opens (the sensor drops those of small files otherwise)', () => {
  const rule = (events: string, condition: string) =>
    `- macro: writes\n  condition: proc.subject && evt.write\n- rule: r\n  description: d\n  category: process.detach\n  severity: high\n  events: [${events}]\n  condition: ${JSON.stringify(condition)}\n  summary: s\n`;

  test('a condition that requires evt.write as a top-level term does not; anything else on open does', () => {
    assert.equal(requiresWrite('proc.subject && evt.write && evt.path.startsWith("/etc")'), true);
    assert.equal(requiresWrite('(proc.subject) && evt.write'), true);
    // under an || or inside parentheses with one, a read-only open could still match
    assert.equal(requiresWrite('evt.write || evt.path == "/etc/shadow"'), false);
    assert.equal(requiresWrite('proc.subject && (evt.write || evt.path == "a && evt.write")'), false);
    assert.equal(requiresWrite('!evt.write && evt.path.endsWith(".pem")'), false);
    assert.equal(load(rule('open', 'proc.subject && evt.path.endsWith(".pem")')).rules[0]?.readsOpens, true);
    assert.equal(load(rule('open', 'writes && evt.path == "/x"')).rules[0]?.readsOpens, false);
    assert.equal(load(rule('signal', 'proc.subject')).rules[0]?.readsOpens, false);
  });

  test('no shipped rule needs them', () => {
    const res = loadRules([join(import.meta.dirname, '../../rules')]);
    assert.ok(res.ruleset);
    assert.deepEqual(res.ruleset.rules.filter((r) => r.readsOpens).map((r) => r.id), []);
  });
});
