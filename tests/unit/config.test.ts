import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConfigFlags, formatConfigProblem, loadConfigFile, resolveConfig } from '../../daemon/config/load.js';
import { parseHostPort, shippedRulesDir } from '../../daemon/config/schema.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'fixtures', 'config');
const repoRoot = join(here, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'redline-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** writes a config file under the temp folder and returns its path */
function write(text: string): string {
  const file = join(tmp, `c${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** load a file and resolve it, returning the config or the printed problems */
function load(command: 'exec' | 'run', file: string, flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = {}) {
  const loaded = loadConfigFile(file);
  if (loaded.problems.some((p) => p.severity === 'error')) return { printed: loaded.problems.map(formatConfigProblem) };
  const res = resolveConfig(command, loaded.raw, { ...flags, config: file }, env);
  return { config: res.config, printed: res.problems.map(formatConfigProblem) };
}

describe('a good config file', () => {
  const file = join(fixtures, 'good.yaml');
  const { config, printed } = load('run', file);

  test('loads without problems', () => {
    assert.deepEqual(printed, []);
    assert.ok(config);
  });

  test('resolves relative paths against the file’s folder', () => {
    assert.ok(config);
    assert.deepEqual(config.rules, [join(fixtures, 'site-rules'), '/etc/redline/extra.yaml']);
    assert.deepEqual(config.weights, [join(fixtures, 'models/qwen')]);
    assert.deepEqual(config.watch, ['/srv/scratch', join(fixtures, 'copies')]);
    assert.equal(config.log, join(fixtures, 'logs/audit.ndjson'));
    assert.equal(config.socket, join(fixtures, 'run/control.sock'));
    assert.equal(config.nvidiaSmi, join(fixtures, 'bin/nvidia-smi'));
    assert.equal(config.configFile, resolve(file));
  });

  test('turns single values into lists and keeps numbers as numbers', () => {
    assert.ok(config);
    assert.deepEqual(config.allowPids, [100]);
    assert.deepEqual(config.protectPids, [200, 201]);
    assert.equal(config.subjectUid, 1001);
    assert.equal(config.subjectPid, undefined);
    assert.equal(config.subjectCgroup, undefined);
  });

  test('reads the enums, the websocket (IPv6 without brackets), the token and booleans', () => {
    assert.ok(config);
    assert.equal(config.command, 'run');
    assert.equal(config.mode, 'observe');
    assert.equal(config.sensor, 'ebpf');
    assert.deepEqual(config.ws, { host: '::1', port: 7078 });
    assert.equal(config.wsToken, 's3cret');
    assert.equal(config.failClosed, true);
  });

  test('is frozen', () => {
    assert.ok(config);
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.rules));
  });
});

describe('an exec config file', () => {
  const { config, printed } = load('exec', join(fixtures, 'exec.yaml'));
  test('takes exec-only keys and `ws: off`', () => {
    assert.deepEqual(printed, []);
    assert.ok(config);
    assert.equal(config.afterTrip, 'hold');
    assert.equal(config.user, '1000');
    assert.equal(config.nvidiaSmi, 'nvidia-smi'); // a bare name stays a PATH lookup
    assert.equal(config.ws, undefined);
    assert.equal(config.log, undefined);
  });
});

describe('flags', () => {
  test('win over the file, and a repeatable flag replaces the file’s list', () => {
    const { config, printed } = load('run', join(fixtures, 'good.yaml'), {
      mode: 'enforce',
      rules: ['my-rules'],
      allowPid: ['7', '8'],
      ws: '0.0.0.0:9000',
      wsToken: 'flagtoken',
      log: 'here.ndjson',
    });
    assert.deepEqual(printed, []);
    assert.ok(config);
    assert.equal(config.mode, 'enforce');
    // relative flag paths are taken from the working folder, not the file's
    assert.deepEqual(config.rules, [resolve(process.cwd(), 'my-rules')]);
    assert.equal(config.log, resolve(process.cwd(), 'here.ndjson'));
    assert.deepEqual(config.allowPids, [7, 8]);
    assert.deepEqual(config.protectPids, [200, 201]); // untouched by flags
    assert.deepEqual(config.ws, { host: '0.0.0.0', port: 9000 });
    assert.equal(config.wsToken, 'flagtoken');
  });

  test('a subject flag replaces the file’s subject instead of conflicting with it', () => {
    const { config, printed } = load('run', join(fixtures, 'good.yaml'), { subjectPid: '4242' });
    assert.deepEqual(printed, []);
    assert.equal(config?.subjectPid, 4242);
    assert.equal(config?.subjectUid, undefined);
  });

  test('bad values are named by their flag', () => {
    const res = resolveConfig('exec', undefined, { mode: 'fast', allowPid: ['abc'], ws: 'nohost', sensor: 'magic', subjectUid: undefined });
    assert.equal(res.config, undefined);
    const printed = res.problems.map(formatConfigProblem);
    assert.ok(printed.includes('--mode: "fast" is not one of observe, enforce'), printed.join('\n'));
    assert.ok(printed.includes('--sensor: "magic" is not one of auto, ebpf, poll'), printed.join('\n'));
    assert.ok(printed.includes('--allow-pid: "abc" is not a process id (an integer from 1)'), printed.join('\n'));
    assert.ok(printed.includes('--ws: "nohost" is not HOST:PORT (e.g. 127.0.0.1:7077 or [::1]:7077)'), printed.join('\n'));
    assert.ok(res.problems.every((p) => p.line === 0 && p.col === 0 && p.severity === 'error'));
  });

  test('--ws off switches the run default off; --after-trip is checked', () => {
    const off = resolveConfig('run', undefined, { ws: 'off', subjectUid: '0' });
    assert.deepEqual(off.problems, []);
    assert.equal(off.config?.ws, undefined);
    assert.equal(off.config?.subjectUid, 0);
    const bad = resolveConfig('exec', undefined, { afterTrip: 'maybe' });
    assert.deepEqual(bad.problems.map(formatConfigProblem), ['--after-trip: "maybe" is not one of hold, kill']);
  });
});

describe('defaults', () => {
  test('exec: no log path (the command names it), no websocket, the default control socket, enforce, kill, auto', () => {
    const { config, problems } = resolveConfig('exec', undefined, {}, {});
    assert.deepEqual(problems, []);
    assert.ok(config);
    assert.equal(config.log, undefined);
    assert.equal(config.ws, undefined);
    assert.equal(config.wsToken, undefined);
    assert.equal(config.mode, 'enforce');
    assert.equal(config.afterTrip, 'kill');
    assert.equal(config.sensor, 'auto');
    assert.equal(config.nvidiaSmi, 'nvidia-smi');
    assert.equal(config.socket, '/run/redline/control.sock');
    assert.equal(config.failClosed, false);
    assert.equal(config.configFile, undefined);
    assert.deepEqual([config.weights, config.allowPids, config.protectPids, config.watch], [[], [], [], []]);
  });

  test('run: the audit log, websocket and control socket defaults; off turns them off', () => {
    const { config, problems } = resolveConfig('run', undefined, { subjectCgroup: 'system.slice/x.scope' }, {});
    assert.deepEqual(problems, []);
    assert.equal(config?.log, '/var/log/redline/audit.ndjson');
    assert.deepEqual(config?.ws, { host: '127.0.0.1', port: 7077 });
    assert.equal(config?.socket, '/run/redline/control.sock');
    const off = resolveConfig('run', undefined, { subjectCgroup: 'x', ws: 'off', socket: 'off' }, {}).config;
    assert.equal(off?.ws, undefined);
    assert.equal(off?.socket, undefined);
    assert.equal(resolveConfig('exec', undefined, { socket: 'c.sock' }, {}).config?.socket, join(process.cwd(), 'c.sock'));
    // a cgroup path is kept as given: relative means relative to the cgroup mount
    assert.equal(config?.subjectCgroup, 'system.slice/x.scope');
  });

  test('the default rules are the shipped rules/ folder, which exists and holds rule files', () => {
    const dir = shippedRulesDir();
    assert.equal(dir, join(repoRoot, 'rules'));
    assert.ok(existsSync(dir));
    assert.ok(readdirSync(dir).some((f) => f.endsWith('.yaml')));
    assert.deepEqual(resolveConfig('exec', undefined, {}, {}).config?.rules, [dir]);
  });
});

describe('REDLINE_WS_TOKEN', () => {
  test('is used when neither flag nor file sets a token', () => {
    assert.equal(resolveConfig('exec', undefined, {}, { REDLINE_WS_TOKEN: 'envtok' }).config?.wsToken, 'envtok');
  });
  test('loses to the flag and to the file', () => {
    assert.equal(resolveConfig('exec', undefined, { wsToken: 'flag' }, { REDLINE_WS_TOKEN: 'envtok' }).config?.wsToken, 'flag');
    const { config } = load('run', join(fixtures, 'good.yaml'), {}, { REDLINE_WS_TOKEN: 'envtok' });
    assert.equal(config?.wsToken, 's3cret');
  });
  test('empty counts as unset; one with spaces is a problem', () => {
    assert.equal(resolveConfig('exec', undefined, {}, { REDLINE_WS_TOKEN: '' }).config?.wsToken, undefined);
    const bad = resolveConfig('exec', undefined, {}, { REDLINE_WS_TOKEN: 'a b' });
    assert.deepEqual(bad.problems.map(formatConfigProblem), ['REDLINE_WS_TOKEN: must not contain spaces or control characters']);
  });
});

describe('bad config files give file:line:col', () => {
  const cases: [string, string, string][] = [
    ['enum', 'mode: fast\n', '1:7: mode: "fast" is not one of observe, enforce'],
    ['list item type', 'allow-pid: [1, abc]\n', '1:16: allow-pid[1]: expected number, got string'],
    ['integer', 'subject-pid: 1.5\n', '1:14: subject-pid: expected integer, got 1.5'],
    ['range', 'subject-pid: 0\n', '1:14: subject-pid: must be greater than 0'],
    ['boolean', 'log: x.ndjson\nfail-closed: yes\n', '2:14: fail-closed: expected boolean, got string'],
    ['HOST:PORT', 'ws: nohost\n', '1:5: ws: "nohost" is not HOST:PORT (e.g. 127.0.0.1:7077 or [::1]:7077)'],
    ['port', 'ws: "localhost:99999"\n', '1:5: ws: "localhost:99999" is not HOST:PORT (e.g. 127.0.0.1:7077 or [::1]:7077): the port must be a number from 0 to 65535'],
    ['unknown key', 'mode: observe\nmodee: enforce\n', '2:1: unknown key "modee" (did you mean "mode"?)'],
    ['empty value', 'log:\n', '1:1: log: expected string, got null'],
    ['empty rules list', 'rules: []\n', '1:8: rules: must not be empty'],
    ['duplicate key', 'mode: observe\nmode: enforce\n', '2:1: Map keys must be unique'],
    ['not a map', '- mode\n', '1:1: a config file is a YAML map of option: value (the option names of the flags, without --)'],
  ];
  for (const [what, text, expected] of cases) {
    test(what, () => {
      const file = write(text);
      const { problems } = loadConfigFile(file);
      const printed = problems.map(formatConfigProblem);
      assert.ok(printed.includes(`${file}:${expected}`), `${printed.join('\n')}\n  wanted ${file}:${expected}`);
    });
  }

  test('an unreadable file is one io problem at 1:1', () => {
    const missing = join(tmp, 'nope.yaml');
    assert.deepEqual(loadConfigFile(missing).problems, [{ code: 'io', file: missing, line: 1, col: 1, message: 'cannot read: ENOENT', severity: 'error' }]);
    assert.equal(loadConfigFile(tmp).problems[0]?.code, 'io');
  });

  test('an empty file is an empty config', () => {
    const file = write('# nothing yet\n');
    const { config, printed } = load('exec', file);
    assert.deepEqual(printed, []);
    assert.equal(config?.mode, 'enforce');
    assert.equal(config?.configFile, file);
  });
});

describe('subjects', () => {
  test('run needs one', () => {
    const res = resolveConfig('run', undefined, {}, {});
    assert.equal(res.config, undefined);
    assert.deepEqual(res.problems.map(formatConfigProblem), ['run: needs a subject: --subject-cgroup PATH, --subject-pid PID, --trials-under CGROUP or --subject-uid UID']);
  });

  test('--trials-under is a subject: it takes the place of the others, not a place beside them', () => {
    const ok = resolveConfig('run', undefined, { trialsUnder: 'evals' }, {});
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.config?.trialsUnder, 'evals');
    const both = resolveConfig('run', undefined, { trialsUnder: 'evals', subjectPid: '5' }, {});
    assert.equal(both.config, undefined);
    assert.match(both.problems.map(formatConfigProblem).join('\n'), /give exactly one subject/);
  });

  test('run takes exactly one (flags)', () => {
    const res = resolveConfig('run', undefined, { subjectPid: '5', subjectUid: '7' }, {});
    assert.deepEqual(res.problems.map(formatConfigProblem), ['--subject-uid: conflicts with subject-pid: give exactly one subject']);
  });

  test('run takes exactly one (file, pointing at the extra key)', () => {
    const file = write('subject-pid: 5\nsubject-uid: 7\n');
    const { printed } = load('run', file);
    assert.deepEqual(printed, [`${file}:2:1: subject-uid: conflicts with subject-pid: give exactly one subject`]);
  });

  test('bad subject flags', () => {
    const res = resolveConfig('run', undefined, { subjectPid: '-3' }, {});
    assert.ok(res.problems.map(formatConfigProblem).includes('--subject-pid: "-3" is not a process id (an integer from 1)'));
    const uid = resolveConfig('run', undefined, { subjectUid: 'root' }, {});
    assert.ok(uid.problems.map(formatConfigProblem).includes('--subject-uid: "root" is not a user id (an integer to 4294967294)'));
  });

  test('exec takes none, from a flag or from the file', () => {
    const flag = resolveConfig('exec', undefined, { subjectCgroup: '/sys/fs/cgroup/x' }, {});
    assert.deepEqual(flag.problems.map(formatConfigProblem), ['--subject-cgroup: only `run` takes a subject; `exec` makes its command the subject']);
    const file = write('mode: observe\nsubject-uid: 1000\n');
    assert.deepEqual(load('exec', file).printed, [`${file}:2:1: subject-uid: only \`run\` takes a subject; \`exec\` makes its command the subject`]);
  });

  test('exec-only keys under run are problems', () => {
    const file = write('subject-uid: 1000\nuser: bob\n');
    assert.deepEqual(load('run', file).printed, [`${file}:2:1: user: only \`exec\` takes this (it starts the subject; \`run\` watches one)`]);
    const flag = resolveConfig('run', undefined, { subjectUid: '1', afterTrip: 'hold' }, {});
    assert.deepEqual(flag.problems.map(formatConfigProblem), ['--after-trip: only `exec` takes this (it starts the subject; `run` watches one)']);
  });
});

describe('parseHostPort', () => {
  test('accepts host names, IPv4 and bracketed IPv6', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:7077'), { host: '127.0.0.1', port: 7077 });
    assert.deepEqual(parseHostPort('localhost:80'), { host: 'localhost', port: 80 });
    assert.deepEqual(parseHostPort('[::1]:7077'), { host: '::1', port: 7077 });
    assert.deepEqual(parseHostPort('[fe80::1]:0'), { host: 'fe80::1', port: 0 });
  });
  test('rejects the rest, saying why', () => {
    assert.match(parseHostPort('::1:7077') as string, /brackets/);
    assert.match(parseHostPort(':7077') as string, /host is missing/);
    assert.match(parseHostPort('300.1.1.1:80') as string, /not a host name or IPv4/);
    assert.match(parseHostPort('[nothex]:80') as string, /not an IPv6/);
    assert.match(parseHostPort('host:') as string, /port/);
    assert.match(parseHostPort('host') as string, /is not HOST:PORT/);
    assert.match(parseHostPort('bad_host:80') as string, /not a host name/);
  });
});
