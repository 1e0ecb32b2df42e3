// systemd/redline.service: `systemd-analyze verify` accepts it without a warning, and it
// has what the deployment needs (see the comments in the unit for why each is there).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { findExecutable } from '../../daemon/sensors/ebpf/host.js';
import { ROOT } from '../helpers/redline.js';

const UNIT = join(ROOT, 'systemd', 'redline.service');
const text = readFileSync(UNIT, 'utf8');
const settings = new Map<string, string[]>();
for (const line of text.split('\n')) {
  const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
  if (m) settings.set(m[1] as string, [...(settings.get(m[1] as string) ?? []), m[2] as string]);
}
const one = (k: string) => settings.get(k)?.at(-1);

test('systemd-analyze verify passes without a word', { skip: findExecutable('systemd-analyze') ? false : 'systemd-analyze is not installed (apt-get install -y systemd)' }, () => {
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', r.stderr);
});

test('it runs redline run, notifies readiness, has a watchdog and restarts always', () => {
  assert.match(one('ExecStart') ?? '', /redline run/);
  assert.equal(one('Type'), 'notify');
  assert.ok(Number.parseInt(one('WatchdogSec') ?? '0', 10) > 0);
  assert.equal(one('Restart'), 'always');
});

test('cgroup delegation, a low OOM score, and no ProtectControlGroups (it breaks freezing)', () => {
  assert.equal(one('Delegate'), 'yes');
  assert.ok(Number(one('OOMScoreAdjust')) <= -900);
  assert.ok(!settings.has('ProtectControlGroups'));
});

test('hardened: no new privileges, a read-only system except the log, run and cgroup paths', () => {
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('ProtectSystem'), 'strict');
  const rw = (settings.get('ReadWritePaths') ?? []).join(' ');
  for (const p of ['/var/log/redline', '/run/redline', '/sys/fs/cgroup']) assert.ok(rw.includes(p), `${p} is writable`);
});
