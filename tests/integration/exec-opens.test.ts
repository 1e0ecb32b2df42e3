// Which opens leave the kernel: every write open, and read-only opens of large regular files
// (weights, copies). A process start's loader cache, libc and locale files, and a small file
// read, are dropped in the kernel: no rule needs them and a burst of short processes would
// otherwise pay for each one. A rule that looks at read-only opens brings them back. And the
// argv of a new program is read in the kernel at its exec, not from /proc afterwards.
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { type LogRecord, readLog, redline, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('opens filtered in the kernel', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  const opens = (log: LogRecord[]) =>
    log
      .filter((r) => r.kind === 'event' && r.type === 'sensor' && (r.event as { type?: string }).type === 'open')
      .map((r) => r.event as { path?: string; filename: string; write: boolean });

  const trial = async (name: string, extraRules: string[] = []) => {
    const small = join(tmp.dir, 'small.txt');
    const big = join(tmp.dir, 'big.bin');
    const out = join(tmp.dir, `${name}-out.txt`);
    writeFileSync(small, 'hello\n');
    writeFileSync(big, Buffer.alloc(2 << 20, 1));
    const script = join(tmp.dir, `${name}.sh`);
    writeFileSync(script, `#!/bin/sh\ncat ${small} >/dev/null\ncat ${big} >/dev/null\necho x > ${out}\n`);
    chmodSync(script, 0o755);
    const log = join(tmp.dir, `${name}.ndjson`);
    const rules = extraRules.flatMap((f) => ['--rules', f]);
    const r = await redline(['exec', '--mode', 'observe', '--record-events', ...rules, '--log', log, '--', script]);
    assert.equal(r.code, 0, r.stderr);
    const recs = readLog(log);
    const execs = recs.filter((x) => x.kind === 'event' && x.type === 'sensor' && (x.event as { type?: string }).type === 'exec').map((x) => x.event as { filename: string; args?: string[] });
    return { seen: opens(recs), execs, small, big, out };
  };

  test('by default: the write and the large read reach the rules; the small read and the loader’s opens do not', async () => {
    const { seen, execs, small, big, out } = await trial('default');
    // the argv of a short command comes from the kernel, read at the exec
    assert.ok(execs.some((e) => e.filename.endsWith('/cat') && JSON.stringify(e.args) === JSON.stringify(['cat', small])), JSON.stringify(execs));
    const paths = seen.map((o) => o.path ?? o.filename);
    assert.ok(paths.includes(out), JSON.stringify(paths));
    assert.ok(paths.includes(big), JSON.stringify(paths));
    assert.ok(!paths.includes(small), JSON.stringify(paths));
    assert.ok(!paths.some((p) => p.includes('ld.so.cache') || p.includes('libc.so')), JSON.stringify(paths));
  });

  test('a rule that looks at read-only opens gets them all', async () => {
    const rule = join(tmp.dir, 'reads.yaml');
    writeFileSync(rule, ['- rule: reads-small', '  description: a user rule on any read', '  category: process.detach', '  severity: info', '  events: [open]', '  condition: proc.subject && !evt.write && evt.path.endsWith("small.txt")', '  summary: "{evt.path}"', ''].join('\n'));
    const { seen, small } = await trial('all', [join(import.meta.dirname, '../../rules'), rule]);
    const paths = seen.map((o) => o.path ?? o.filename);
    assert.ok(paths.includes(small), JSON.stringify(paths));
    assert.ok(paths.some((p) => p.includes('ld.so.cache') || p.includes('libc.so')), JSON.stringify(paths));
  });
});
