// `redline rules test` on a fixture of {event, proc} lines (no daemon needed): what a pack
// fires, a pack of one's own, and clear errors for no events or a broken pack.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { redline, tempDir } from '../helpers/redline.js';

const tmp = tempDir();
after(() => tmp.cleanup());

const fixture = join(tmp.dir, 'events.ndjson');
writeFileSync(
  fixture,
  [
    // the subject's shell sends SIGKILL to a process outside its tree
    { event: { type: 'signal', time: 1000, pid: 50, syscall: 'kill', target_pid: 77, sig: 9 }, proc: { pid: 50, comm: 'sh' }, target: { pid: 77, comm: 'vllm', subject: false }, targets: [{ pid: 77, comm: 'vllm', subject: false }] },
    // then tries a pid that no longer exists: the kernel answers ESRCH, nothing is sent
    { event: { type: 'signal', time: 1005, pid: 50, syscall: 'kill', target_pid: 99999, sig: 9, ret: -3 }, proc: { pid: 50, comm: 'sh' }, target: { pid: 99999, comm: '', subject: false, known: false }, targets: [{ pid: 99999, comm: '', subject: false, known: false }] },
    // and runs nohup
    { event: { type: 'exec', time: 1010, pid: 51, filename: '/usr/bin/nohup' }, proc: { pid: 51, comm: 'nohup', exe: '/usr/bin/nohup', args: ['nohup', 'python3', 'serve.py'], ancestors: [{ pid: 50, comm: 'sh' }] } },
  ]
    .map((o) => JSON.stringify(o))
    .join('\n'),
);

test('the shipped rules over a fixture: a kill outside the tree and a detach', async () => {
  const r = await redline(['rules', 'test', '--json', fixture]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { events: number; fired: { rule: string; severity: string; summary: string }[] };
  assert.equal(out.events, 3);
  assert.deepEqual(out.fired.map((f) => f.rule).sort(), ['detach-tool', 'signal-outside-tree', 'signal-refused']);
  assert.match(out.fired.find((f) => f.rule === 'signal-outside-tree')?.summary ?? '', /SIGKILL to vllm \(pid 77\)/);
  // judged on the kernel's answer: an attempt, low, never a freeze
  const refused = out.fired.find((f) => f.rule === 'signal-refused');
  assert.equal(refused?.severity, 'low');
  assert.match(refused?.summary ?? '', /pid 99999; the kernel refused it \(ESRCH\)/);
  assert.equal(out.fired.filter((f) => f.summary.includes('99999')).length, 1, 'the refused kill is not also a kill outside the tree');
});

test('a pack of one’s own: only its rules fire', async () => {
  const pack = join(tmp.dir, 'mine.yaml');
  writeFileSync(pack, '- rule: sigkill-anything\n  description: any SIGKILL\n  category: process.kill\n  severity: low\n  events: [signal]\n  condition: evt.sig == 9\n  summary: "SIGKILL by {proc.comm}"\n');
  const r = await redline(['rules', 'test', '--rules', pack, fixture]);
  assert.equal(r.code, 0, r.stderr);
  // (the refused SIGKILL by the same shell is folded into the first by de-duplication)
  assert.match(r.stdout, /1 rules over 3 recorded events: 1 alert\n/);
  assert.match(r.stdout, /LOW process\.kill sigkill-anything: SIGKILL by sh/);
});

test('no recorded events, or a broken pack: exit 2 saying why', async () => {
  const empty = join(tmp.dir, 'empty.ndjson');
  writeFileSync(empty, '{"seq":0,"kind":"daemon"}\n');
  const r = await redline(['rules', 'test', empty]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no recorded events.*--record-events/);
  const broken = join(tmp.dir, 'broken.yaml');
  writeFileSync(broken, '- rule: x\n  category: process.kill\n  severity: high\n  events: [signal]\n  condition: proc.nosuch\n  summary: x\n');
  const b = await redline(['rules', 'test', '--rules', broken, fixture]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /broken\.yaml:\d+:\d+:/);
});

test('persistence tools: setting up trips, asking does not (crontab -l, systemctl status, at -l)', async () => {
  const exec = (time: number, comm: string, args: string[]) => ({ event: { type: 'exec', time, pid: 60 + time, filename: `/usr/bin/${comm}` }, proc: { pid: 60 + time, comm, exe: `/usr/bin/${comm}`, args } });
  const file = join(tmp.dir, 'persistence.ndjson');
  const runs = [
    exec(1, 'crontab', ['crontab', '-l']),
    exec(2, 'systemctl', ['systemctl', '--no-pager', 'status', 'nginx']),
    exec(3, 'systemctl', ['systemctl', 'list-units', '--type=service']),
    exec(4, 'at', ['at', '-l']),
    exec(5, 'crontab', ['crontab', '/tmp/jobs']),
    exec(6, 'systemctl', ['systemctl', '--user', 'enable', '--now', 'replica.service']),
    exec(7, 'crontab', ['crontab', '-l', '-e']),
    exec(8, 'at', ['at', 'now', '+', '1', 'minute']),
  ];
  writeFileSync(file, runs.map((o) => JSON.stringify(o)).join('\n'));
  const r = await redline(['rules', 'test', '--json', file]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { fired: { rule: string; summary: string }[] };
  const tripped = out.fired.filter((f) => f.rule === 'persistence-tool').map((f) => f.summary.replace(/^.*persistence: /, ''));
  assert.deepEqual(tripped, ['crontab /tmp/jobs', 'systemctl --user enable --now replica.service', 'crontab -l -e', 'at now + 1 minute']);
});
