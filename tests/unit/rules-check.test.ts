// `redline rules check` through the real CLI: the daemon's loader, exit codes, positions.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, redline } from '../helpers/redline.js';

const fx = (p: string) => join(ROOT, 'tests/fixtures/rules', p);

describe('rules check', () => {
  test('every shipped pack loads', async () => {
    const r = await redline(['rules', 'check', join(ROOT, 'rules')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: \d+ rules from \d+ files/);
    assert.equal(r.stderr, '', 'no warnings in the shipped packs');
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
