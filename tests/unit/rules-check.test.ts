// `redline rules check` through the real CLI: the daemon's loader, exit codes, positions.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, redline, tempDir } from '../helpers/redline.js';

const fx = (p: string) => join(ROOT, 'tests/fixtures/rules', p);

describe('rules check', () => {
  test('every shipped pack loads', async () => {
    const r = await redline(['rules', 'check', join(ROOT, 'rules')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: \d+ rules from \d+ files/);
    assert.equal(r.stderr, '', 'no warnings in the shipped packs');
  });

  test('with the poll sensor: the rules fed only by what it cannot see are listed inactive, the others partly fed', async () => {
    const r = await redline(['rules', 'check', join(ROOT, 'rules')]);
    assert.match(r.stdout, /^with the poll sensor: \d+ inactive, 0 partly fed$/m);
    assert.match(r.stdout, /^ {2}inactive signal-outside-tree \(.*rules\/process\.yaml:\d+\): fed only by signal$/m);
    assert.match(r.stdout, /^ {2}inactive reboot-syscall \(.*rules\/system\.yaml:\d+\): fed only by reboot$/m);
    // what the poll does see keeps its rules live
    assert.doesNotMatch(r.stdout, /(inactive|partly) +(weights-copy|replica-loads-weights|protected-process-vanished|subject-serves-inference) /);
    const dir = tempDir('redline-feeds-');
    try {
      const pack = join(dir.dir, 'mixed.yaml');
      writeFileSync(pack, ['- rule: kill-or-exec', '  description: fed by one event the poll sees and one it does not', '  category: process.kill', '  severity: low', '  events: [signal, exec]', '  condition: proc.subject', '  summary: "{proc.comm}"', ''].join('\n'));
      const m = await redline(['rules', 'check', pack]);
      assert.equal(m.code, 0, m.stderr);
      assert.match(m.stdout, /^with the poll sensor: 0 inactive, 1 partly fed$/m);
      assert.match(m.stdout, new RegExp(`partly +kill-or-exec \\(${pack.replace(/[.]/g, '\\.')}:1\\): never gets signal`));
    } finally {
      dir.cleanup();
    }
  });

  test('a good site pack loads on top of the shipped ones', async () => {
    const r = await redline(['rules', 'check', join(ROOT, 'rules'), fx('good/site.yaml')]);
    assert.equal(r.code, 0, r.stderr);
  });

  const cases: [string, RegExp][] = [
    ['yaml-error.yaml', /yaml-error\.yaml:2:16: /],
    ['unknown-key.yaml', /unknown-key\.yaml:8:3: unknown key "action"/],
    ['bad-cel.yaml', /bad-cel\.yaml:6:\d+: condition: /],
    ['unknown-category.yaml', /unknown-category\.yaml:3:13: .*"process\.murder" is not one of/],
    ['unknown-field.yaml', /unknown-field\.yaml:8:\d+: condition: .*favourite_colour/],
  ];
  for (const [file, re] of cases) {
    test(`${file}: exit 2 with file:line:col`, async () => {
      const r = await redline(['rules', 'check', fx(`broken/${file}`)]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, re);
    });
  }

  test('a missing path is an error, not an empty success', async () => {
    const r = await redline(['rules', 'check', '/nonexistent/rules.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\/nonexistent\/rules\.yaml:1:1: cannot read: ENOENT/);
  });
});
