// The options table is the one place an option is declared: an entry added to it (and
// nowhere else) shows up in --help, in the config file's schema and JSON Schema, and in the
// resolved config with its type; a value that cannot work is refused where it is parsed.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Command } from 'commander';
import { formatConfigProblem, loadConfigFile, optionsFrom, options, resolveConfig } from '../../daemon/config/load.js';
import { OPTIONS } from '../../daemon/config/options.js';
import { V } from '../../daemon/config/schema.js';
import { type OptionTable, option } from '../../daemon/config/table.js';
import { redline, tempDir } from '../helpers/redline.js';

const tmp = tempDir('redline-options-');
after(() => tmp.cleanup());
let n = 0;
function write(text: string): string {
  const file = join(tmp.dir, `o${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

// a made-up option, declared once, exactly as a real one would be
const table = {
  ...OPTIONS,
  'kill-grace': option(V.ms(10, 5000), { field: 'killGraceMs', arg: 'ms', commands: 'exec', help: 'how long a kill waits before it says the subject survived', default: () => 250 }),
};
const extended = optionsFrom(table);

describe('an option added through the table alone', () => {
  test('is in --help of the command that takes it, with its default, and only there', () => {
    const exec = extended.addTo(new Command('exec'), 'exec').helpInformation().replace(/\s+/g, ' ');
    assert.match(exec, /--kill-grace <ms> how long a kill waits before it says the subject survived \(default 250\)/);
    assert.doesNotMatch(extended.addTo(new Command('run'), 'run').helpInformation(), /kill-grace/);
  });

  test('is parsed from the command line and resolved, typed by the table', async () => {
    let flags = {};
    const program = new Command('redline').exitOverride();
    extended.addTo(program.command('exec'), 'exec').action((opts: object) => {
      flags = opts;
    });
    await program.parseAsync(['exec', '--kill-grace', '400', '--mode', 'observe'], { from: 'user' });
    const { config, problems } = extended.resolve('exec', undefined, flags, {});
    assert.deepEqual(problems, []);
    assert.ok(config);
    const ms: number = config.killGraceMs; // the resolved type has the field: no hand-written interface
    assert.equal(ms, 400);
    assert.equal(config.mode, 'observe');
    assert.equal(extended.resolve('exec', undefined, {}, {}).config?.killGraceMs, 250);
  });

  test('a bad flag value is refused with the range from the schema', () => {
    const { config, problems } = extended.resolve('exec', undefined, { killGrace: '3' }, {});
    assert.equal(config, undefined);
    assert.deepEqual(problems.map(formatConfigProblem), ['--kill-grace: "3" is not a whole number of milliseconds from 10 to 5000']);
  });

  test('a config file may set it; a bad value is refused at file:line:col; the other command refuses it', () => {
    const good = write('mode: observe\nkill-grace: 1000\n');
    const loaded = extended.load(good);
    assert.deepEqual(loaded.problems, []);
    assert.equal(extended.resolve('exec', loaded.raw, { config: good }, {}).config?.killGraceMs, 1000);

    const bad = write('mode: observe\nkill-grace: 5\n');
    assert.deepEqual(extended.load(bad).problems.map(formatConfigProblem), [`${bad}:2:13: kill-grace: must be at least 10`]);
    const typo = write('kill-grase: 100\n');
    assert.deepEqual(extended.load(typo).problems.map(formatConfigProblem), [`${typo}:1:1: unknown key "kill-grase" (did you mean "kill-grace"?)`]);

    const run = write('subject-uid: 1000\nkill-grace: 100\n');
    const res = extended.resolve('run', extended.load(run).raw, {}, {});
    assert.deepEqual(res.problems.map(formatConfigProblem), [`${run}:2:1: kill-grace: only \`exec\` takes this`]);
  });

  test('is in the JSON Schema, with its range and help', () => {
    const props = extended.jsonSchema().properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(props['kill-grace'], {
      description: 'how long a kill waits before it says the subject survived',
      type: 'integer',
      minimum: 10,
      maximum: 5000,
    });
  });

  test('the real table does not know it', () => {
    assert.equal('killGraceMs' in (options.resolve('exec', undefined, {}, {}).config ?? {}), false);
    assert.match(loadConfigFile(write('kill-grace: 100\n')).problems.map(formatConfigProblem).join('\n'), /unknown key "kill-grace"/);
  });
});

describe('a value that cannot work is refused where it is parsed', () => {
  test('--sensor with an unknown sensor, naming the ones there are', () => {
    const res = resolveConfig('exec', undefined, { sensor: 'fast' }, {});
    assert.equal(res.config, undefined);
    assert.deepEqual(res.problems.map(formatConfigProblem), ['--sensor: "fast" is not one of auto, ebpf, poll']);
  });
  test('poll-interval below 10 ms in a file, at file:line:col', () => {
    const file = write('mode: observe\npoll-interval: 5\n');
    assert.deepEqual(loadConfigFile(file).problems.map(formatConfigProblem), [`${file}:2:16: poll-interval: must be at least 10`]);
  });
  test('auto, ebpf and poll are accepted; the poll reads every 100 ms unless told', () => {
    for (const sensor of ['auto', 'ebpf', 'poll'] as const) assert.equal(resolveConfig('exec', undefined, { sensor }, {}).config?.sensor, sensor);
    assert.equal(resolveConfig('exec', undefined, {}, {}).config?.pollIntervalMs, 100);
  });
});

describe('the published JSON Schema', () => {
  test('has every file key of the table, and nothing else', () => {
    const schema = options.jsonSchema();
    const keys = Object.keys(OPTIONS).filter((k) => k !== 'config');
    assert.deepEqual(Object.keys(schema.properties as object).sort(), keys.sort());
    assert.equal(schema.additionalProperties, false);
    const props = schema.properties as Record<string, Record<string, unknown>>;
    assert.deepEqual(props.mode?.enum, ['observe', 'enforce']);
    assert.equal(props['subject-pid']?.type, 'integer');
  });

  test('`redline config schema` prints it; `exec --help` and `run --help` list the table', async () => {
    const r = await redline(['config', 'schema']);
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.stdout), options.jsonSchema());
    const exec = await redline(['exec', '--help']);
    const run = await redline(['run', '--help']);
    for (const [key, e] of Object.entries(OPTIONS as OptionTable)) {
      if (e.commands !== 'run') assert.match(exec.stdout, new RegExp(`--${key}\\b`), `exec --${key}`);
      if (e.commands !== 'exec') assert.match(run.stdout, new RegExp(`--${key}\\b`), `run --${key}`);
    }
    assert.doesNotMatch(exec.stdout, /--subject-pid/);
    assert.doesNotMatch(run.stdout, /--after-trip/);
  });
});
