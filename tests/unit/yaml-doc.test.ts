import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, type Scalar } from 'yaml';
import { z } from 'zod';
import { formatProblem, SEVERITIES } from '../../daemon/events.js';
import { formatPath, keyPositionOf, offsetPosition, parseYamlText, positionOf, zodProblems } from '../../daemon/yaml-doc.js';

const lines = (...ls: string[]) => `${ls.join('\n')}\n`;

describe('parseYamlText', () => {
  test('a duplicate key is an error at the second key', () => {
    const { problems } = parseYamlText('f.yaml', lines('a: 1', 'b: 2', 'a: 3'));
    assert.equal(problems.length, 1);
    assert.deepEqual({ ...problems[0], message: undefined }, { code: 'yaml', file: 'f.yaml', line: 3, col: 1, message: undefined, severity: 'error' });
    assert.match(problems[0]?.message ?? '', /unique/);
  });

  test('bad indentation is an error on its line', () => {
    const { problems } = parseYamlText('f.yaml', lines('a:', '  b: 1', ' c: 2'));
    assert.ok(problems.length >= 1);
    assert.equal(problems[0]?.code, 'yaml');
    assert.equal(problems[0]?.line, 3);
    assert.equal(problems[0]?.col, 1);
  });

  test('a line indented too far is reported on that line', () => {
    const { problems } = parseYamlText('f.yaml', lines('- rule: r', '  description: some text', '   category: x'));
    assert.ok(problems.some((p) => p.line === 3 && p.col === 4 && p.severity === 'error'), JSON.stringify(problems));
  });

  test('an unclosed flow sequence and an unclosed quote are errors', () => {
    assert.ok(parseYamlText('f.yaml', lines('k: [1, 2')).problems.some((p) => p.severity === 'error'));
    assert.ok(parseYamlText('f.yaml', lines('k: "open')).problems.some((p) => p.severity === 'error'));
  });

  test('clean text gives no problems and a document', () => {
    const r = parseYamlText('f.yaml', lines('a: 1'));
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.doc?.toJS(), { a: 1 });
  });
});

describe('positions and zod problems', () => {
  const text = lines(
    '- rule: one', //           1
    '  severity: hgh', //       2: the value at col 13
    '  sevrity: high', //       3: the key at col 3
    '- severity: low', //       4: the item map at col 3
    '  tags: [a, 1]', //        5: `1` at col 13
    '- rule: two', //           6
    '  dedup: {windo: 5}', //   7: `windo` at col 11
    '- rule: three', //         8
    '  dedup: yes', //          9: `yes` at col 10
    '- rule: [x]', //          10: `[` at col 9
  );
  const item = z.strictObject({
    rule: z.string(),
    severity: z.enum(SEVERITIES).optional(),
    tags: z.array(z.string()).optional(),
    dedup: z.union([z.literal(false), z.strictObject({ window: z.number() })]).optional(),
  });
  const { doc, lineCounter, problems: yamlProblems } = parseYamlText('r.yaml', text);
  assert.ok(doc);
  assert.deepEqual(yamlProblems, []);
  const items = doc.toJS() as unknown[];
  const all = items.flatMap((raw, i) => {
    const res = item.safeParse(raw);
    return res.success ? [] : zodProblems('r.yaml', doc, lineCounter, res.error, [i], item);
  });
  const printed = all.map(formatProblem);

  test('an enum error points at the value and names the choices', () => {
    assert.ok(printed.includes('r.yaml:2:13: severity: "hgh" is not one of info, low, medium, high, critical'), printed.join('\n'));
  });

  test('an unknown key points at the key, with a did-you-mean', () => {
    assert.ok(printed.includes('r.yaml:3:3: unknown key "sevrity" (did you mean "severity"?)'), printed.join('\n'));
  });

  test('a missing required key points at the map that lacks it', () => {
    assert.ok(printed.includes('r.yaml:4:3: missing required key "rule"'), printed.join('\n'));
  });

  test('a wrong type inside a list points at the item', () => {
    assert.ok(printed.includes('r.yaml:5:13: tags[1]: expected string, got number'), printed.join('\n'));
  });

  test('inside a union, the arm that fits the shape explains the error', () => {
    assert.ok(printed.includes('r.yaml:7:11: dedup: unknown key "windo" (did you mean "window"?)'), printed.join('\n'));
    assert.ok(printed.includes('r.yaml:7:10: dedup: missing required key "window"'), printed.join('\n'));
    assert.ok(printed.includes('r.yaml:9:10: dedup: expected false or map, got string'), printed.join('\n'));
    assert.ok(printed.includes('r.yaml:10:9: rule: expected string, got list'), printed.join('\n'));
  });

  test('every problem is a schema error, in file order', () => {
    assert.equal(all.length, 8, printed.join('\n'));
    assert.ok(all.every((p) => p.code === 'schema' && p.severity === 'error'));
    const order = all.map((p) => p.line);
    assert.deepEqual(order, [...order].sort((a, b) => a - b));
  });

  test('positionOf, keyPositionOf and the fallback to the nearest ancestor', () => {
    assert.deepEqual(positionOf(doc, lineCounter, [0, 'severity']), { line: 2, col: 13 });
    assert.deepEqual(keyPositionOf(doc, lineCounter, [0, 'severity']), { line: 2, col: 3 });
    assert.deepEqual(positionOf(doc, lineCounter, [1, 'tags', 1]), { line: 5, col: 13 });
    assert.deepEqual(positionOf(doc, lineCounter, [1, 'nope']), { line: 4, col: 3 });
    assert.deepEqual(positionOf(doc, lineCounter, [1, 'tags', 7]), { line: 5, col: 9 });
    assert.deepEqual(positionOf(doc, lineCounter, []), { line: 1, col: 1 });
    assert.deepEqual(positionOf(doc, lineCounter, [99]), { line: 1, col: 1 });
  });

  test('a missing key whose schema is a union is still reported as missing', () => {
    const p = parseYamlText('m.yaml', lines('other: 1'));
    assert.ok(p.doc);
    const schema = z.object({ when: z.union([z.string(), z.array(z.string())]) });
    const res = schema.safeParse(p.doc.toJS());
    assert.ok(!res.success);
    assert.deepEqual(zodProblems('m.yaml', p.doc, p.lineCounter, res.error).map(formatProblem), ['m.yaml:1:1: missing required key "when"']);
  });

  test('a key with no value is positioned at the key', () => {
    const p = parseYamlText('f.yaml', lines('a: 1', 'empty:'));
    assert.ok(p.doc);
    assert.deepEqual(positionOf(p.doc, p.lineCounter, ['empty']), { line: 2, col: 1 });
  });

  test('formatPath', () => {
    assert.equal(formatPath(['exceptions', 0, 'name']), 'exceptions[0].name');
    assert.equal(formatPath([]), '');
  });
});

describe('offsetPosition', () => {
  const text = lines(
    'plain: a && b', //            1: `a` at col 8
    "single: 'it''s x'", //        2: opening quote at col 9
    'double: "a\\tb c"', //        3: opening quote at col 9; `\t` at cols 11-12
    'block: |', //                 4
    '  first line', //             5: content at col 3
    '    second', //               6: two spaces of content at cols 3-4
    'folded: >-', //               7
    '  one', //                    8
    '  two', //                    9
    'multi: first', //            10
    '  second', //                11
    'after: 1', //                12
  );
  const { doc, lineCounter } = parseYamlText('c.yaml', text);
  assert.ok(doc);
  const scalar = (key: string) => {
    const n = doc.get(key, true) as Node;
    assert.ok(isScalar(n));
    return n as Scalar;
  };
  const at = (key: string, offset: number) => offsetPosition(scalar(key), lineCounter, offset);

  test('plain scalar', () => {
    assert.equal(scalar('plain').value, 'a && b');
    assert.deepEqual(at('plain', 0), { line: 1, col: 8 });
    assert.deepEqual(at('plain', 2), { line: 1, col: 10 });
    assert.deepEqual(at('plain', 5), { line: 1, col: 13 });
  });

  test('literal block scalar: content starts the line after `|`, at the block indentation', () => {
    assert.equal(scalar('block').value, 'first line\n  second\n');
    assert.deepEqual(at('block', 0), { line: 5, col: 3 });
    assert.deepEqual(at('block', 6), { line: 5, col: 9 });
    assert.deepEqual(at('block', 11), { line: 6, col: 3 });
    assert.deepEqual(at('block', 13), { line: 6, col: 5 });
  });

  test('folded block scalar', () => {
    assert.equal(scalar('folded').value, 'one two');
    assert.deepEqual(at('folded', 0), { line: 8, col: 3 });
    assert.deepEqual(at('folded', 3), { line: 8, col: 6 }); // the fold: end of the first line
    assert.deepEqual(at('folded', 4), { line: 9, col: 3 });
  });

  test('multi-line plain scalar', () => {
    assert.equal(scalar('multi').value, 'first second');
    assert.deepEqual(at('multi', 0), { line: 10, col: 8 });
    assert.deepEqual(at('multi', 6), { line: 11, col: 3 });
  });

  test('a block scalar with an explicit indentation indicator and a header comment', () => {
    const p = parseYamlText('i.yaml', lines('- c: |2- # why', '     x y', '- d: 1'));
    assert.ok(p.doc);
    const n = p.doc.getIn([0, 'c'], true) as Scalar;
    // the item map sits at indent 2, so `|2` means 4 spaces of indentation; the fifth is content
    assert.equal(n.value, ' x y');
    assert.deepEqual(offsetPosition(n, p.lineCounter, 1), { line: 2, col: 6 });
    assert.deepEqual(offsetPosition(n, p.lineCounter, 3), { line: 2, col: 8 });
  });

  test('never leaves the scalar, whatever the offset', () => {
    const cmp = (a: { line: number; col: number }, b: { line: number; col: number }) => a.line - b.line || a.col - b.col;
    for (const key of ['plain', 'single', 'double', 'block', 'folded', 'multi']) {
      const n = scalar(key);
      const range = n.range;
      assert.ok(range);
      const lo = lineCounter.linePos(range[0]);
      const hi = lineCounter.linePos(range[1] - 1);
      for (let o = -3; o <= String(n.value).length + 5; o++) {
        const p = offsetPosition(n, lineCounter, o);
        assert.ok(cmp(p, lo) >= 0 && cmp(p, hi) <= 0, `${key}@${o}: ${JSON.stringify(p)} outside ${JSON.stringify([lo, hi])}`);
      }
    }
  });

  test('a quoted scalar points at its start (its escapes are not decoded back to the source)', () => {
    for (const o of [0, 3, 5, 99]) {
      assert.deepEqual(at('single', o), { line: 2, col: 9 });
      assert.deepEqual(at('double', o), { line: 3, col: 9 });
    }
  });

  test('a document parsed elsewhere (no source text kept) gets the scalar start', () => {
    const lc = new LineCounter();
    const d = parseDocument(lines('k: "abc"', 'p: a b'), { lineCounter: lc });
    assert.deepEqual(offsetPosition(d.get('k', true) as Scalar, lc, 1), { line: 1, col: 4 });
    assert.deepEqual(offsetPosition(d.get('p', true) as Scalar, lc, 2), { line: 2, col: 4 });
  });

  test('folded block with a blank line, a more-indented line and a comment after a plain scalar', () => {
    const p = parseYamlText('f.yaml', lines('a: >', '  x &&', '', '    y', '  z', 'b: p && q # note', 'c: |+', '  k', '', 'd: 1'));
    assert.ok(p.doc);
    const a = p.doc.get('a', true) as Scalar;
    assert.equal(a.value, 'x &&\n\n  y\nz\n');
    assert.deepEqual(offsetPosition(a, p.lineCounter, 0), { line: 2, col: 3 });
    assert.deepEqual(offsetPosition(a, p.lineCounter, 8), { line: 4, col: 5 }); // `y`
    assert.deepEqual(offsetPosition(a, p.lineCounter, 10), { line: 5, col: 3 }); // `z`
    const b = p.doc.get('b', true) as Scalar;
    assert.deepEqual(offsetPosition(b, p.lineCounter, 5), { line: 6, col: 9 }); // `q`
    assert.deepEqual(offsetPosition(b, p.lineCounter, 6), { line: 6, col: 9 }); // one past: still `q`, not the comment
    const c = p.doc.get('c', true) as Scalar;
    assert.equal(c.value, 'k\n\n');
    assert.deepEqual(offsetPosition(c, p.lineCounter, 0), { line: 8, col: 3 });
    assert.deepEqual(offsetPosition(c, p.lineCounter, 2), { line: 8, col: 4 }); // a kept line break: the end of the last line
  });

  test('in every shipped rule pack, each plain and block scalar character maps to itself in the source', () => {
    const dir = new URL('../../rules/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length > 0);
    let checked = 0;
    for (const f of files) {
      const text = readFileSync(new URL(f, dir), 'utf8');
      const p = parseYamlText(f, text);
      assert.ok(p.doc);
      visit(p.doc.contents, (n) => {
        if (!['PLAIN', 'BLOCK_LITERAL', 'BLOCK_FOLDED'].includes(n.type ?? '') || typeof n.value !== 'string') return;
        for (let i = 0; i < n.value.length; i++) {
          const ch: string = n.value[i] ?? '';
          if (/\s/.test(ch)) continue;
          const pos = offsetPosition(n, p.lineCounter, i);
          const src = (p.lineCounter.lineStarts[pos.line - 1] ?? 0) + pos.col - 1;
          assert.equal(text[src], ch, `${f}:${pos.line}:${pos.col}: value[${i}] of ${JSON.stringify(n.value)}`);
          checked++;
        }
      });
    }
    assert.ok(checked > 1000, String(checked));
  });
});

function visit(n: unknown, f: (s: Scalar) => void): void {
  if (isScalar(n)) f(n);
  else if (isMap(n) || isSeq(n)) {
    for (const it of n.items) {
      if (isPair(it)) {
        visit(it.key, f);
        visit(it.value, f);
      } else visit(it, f);
    }
  }
}

describe('did-you-mean for unknown keys', () => {
  const problemsFor = (yaml: string, schema: z.ZodType) => {
    const p = parseYamlText('k.yaml', yaml);
    assert.ok(p.doc);
    const res = schema.safeParse(p.doc.toJS());
    assert.ok(!res.success);
    return zodProblems('k.yaml', p.doc, p.lineCounter, res.error, [], schema).map(formatProblem);
  };

  test('ignores case, and says nothing when no key is close', () => {
    const schema = z.strictObject({ severity: z.string().optional(), window: z.number().optional() });
    assert.deepEqual(problemsFor(lines('SEVRITY: x', 'colour: y'), schema), ['k.yaml:1:1: unknown key "SEVRITY" (did you mean "severity"?)', 'k.yaml:2:1: unknown key "colour"']);
  });

  test('finds the keys through lists, optionals, defaults, transforms and a recursive schema', () => {
    interface Tree {
      name: string;
      children?: Tree[];
    }
    const tree: z.ZodType<Tree> = z.lazy(() => z.strictObject({ name: z.string(), children: z.array(tree).optional() }));
    const schema = z.strictObject({
      items: z.array(z.strictObject({ label: z.string().transform((s) => s.length) })).default([]),
      tree: tree.optional(),
    });
    assert.deepEqual(problemsFor(lines('items:', '  - labl: a', 'tree:', '  name: r', '  children:', '    - nme: c'), schema), [
      'k.yaml:2:5: items[0]: missing required key "label"',
      'k.yaml:2:5: items[0]: unknown key "labl" (did you mean "label"?)',
      'k.yaml:6:7: tree.children[0]: missing required key "name"',
      'k.yaml:6:7: tree.children[0]: unknown key "nme" (did you mean "name"?)',
    ]);
  });
});
