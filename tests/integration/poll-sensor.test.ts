// The poll sensor and life without root: what one pass sees (programs, open files and the bytes
// their positions moved, mappings, exits); redline run as nobody — exec on a replication
// attempt in enforce mode frozen with SIGSTOP of the process tree, and with cgroup.freeze in a
// cgroup delegated to that user; a protected process that vanishes; doctor as that user; the
// trial's start naming the sensor, and audit showing it. Root is needed only to become nobody
// (setpriv) and to delegate a cgroup; bpftrace is not needed at all.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCgroupV2Mount, removeGroup } from '../../daemon/cgroup.js';
import { makeModel, type Model } from '../helpers/model.js';
import { alertsOf, CLI, type LogRecord, readLog, redline, ROOT, startRedline, tempDir, USER_UID, waitForRecord } from '../helpers/redline.js';

const skip = process.getuid?.() !== 0 ? 'needs root to run redline as nobody (setpriv) and to delegate a cgroup' : !findCgroupV2Mount() ? 'needs a cgroup v2 mount' : false;
const SERVER = join(ROOT, 'tests/fixtures/fake_server.py');

const events = (records: LogRecord[], type: string) => records.filter((r) => r.kind === 'event' && (r.event as { type?: string } | undefined)?.type === type).map((r) => r.event as Record<string, unknown>);

describe('the poll sensor, as root', { skip }, () => {
  const tmp = tempDir('redline-test-poll-');
  after(() => tmp.cleanup());

  test('one pass at a time: exec, opens, bytes read in order, a mapping, bytes written, exits', async () => {
    writeFileSync(join(tmp.dir, 'big.bin'), Buffer.alloc(4 << 20, 3));
    const agent = join(tmp.dir, 'agent.py');
    // slow enough for passes 100 ms apart to see each step
    writeFileSync(
      agent,
      [
        'import mmap, os, sys, time',
        'd = sys.argv[1]',
        'time.sleep(0.3)',
        "with open(f'{d}/big.bin', 'rb') as f:",
        '    for _ in range(4):',
        '        f.read(1 << 20)',
        '        time.sleep(0.25)',
        "with open(f'{d}/big.bin', 'rb') as f:",
        '    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)',
        '    time.sleep(0.4)',
        '    m.close()',
        "with open(f'{d}/out.bin', 'wb') as f:",
        '    for _ in range(2):',
        "        f.write(b'x' * (1 << 20))",
        '        f.flush()',
        '        time.sleep(0.25)',
        "os.system('sleep 0.4')",
      ].join('\n'),
    );
    const log = join(tmp.dir, 'events.ndjson');
    const r = await redline(['exec', '--sensor', 'poll', '--mode', 'observe', '--record-events', '--socket', 'off', '--log', log, '--', 'python3', agent, tmp.dir]);
    assert.equal(r.code, 0, r.stderr);
    const recs = readLog(log);
    const sensor = recs.find((x) => x.kind === 'daemon' && x.phase === 'sensor' && x.sensor === 'poll') as LogRecord;
    assert.ok(sensor, 'the sensor record names the poll');
    assert.equal(sensor.interval_ms, 100);
    assert.ok((sensor.blind_to as { type: string }[]).some((b) => b.type === 'signal'), 'it says it cannot see signals');
    assert.ok((sensor.inactive_rules as string[]).includes('signal-outside-tree'));
    assert.equal(recs.find((x) => x.kind === 'trial' && x.phase === 'start')?.sensor, 'poll');

    const execs = events(recs, 'exec');
    assert.ok(execs.some((e) => (e.args as string[]).join(' ') === 'sleep 0.4'), 'the child the agent ran');
    const opens = events(recs, 'open');
    assert.ok(opens.some((e) => e.path === join(tmp.dir, 'big.bin') && e.write === false), 'big.bin opened for reading');
    assert.ok(opens.some((e) => e.path === join(tmp.dir, 'out.bin') && e.write === true), 'out.bin opened for writing');
    const bytes = events(recs, 'file_bytes');
    const readBig = bytes.filter((e) => e.op === 'read' && e.size === 4 << 20).reduce((n, e) => n + Number(e.bytes), 0);
    assert.equal(readBig, 4 << 20, 'every byte read in order, from the file position');
    assert.ok(bytes.some((e) => e.op === 'mmap' && e.bytes === 4 << 20 && e.size === 4 << 20), 'the whole file mapped');
    const written = bytes.filter((e) => e.op === 'write' && e.write === true).reduce((n, e) => n + Number(e.bytes), 0);
    assert.equal(written, 2 << 20, 'the bytes written');
    const exits = events(recs, 'exit').map((e) => e.comm);
    assert.ok(exits.includes('sleep') && exits.includes('python3'), `exits seen: ${exits.join(', ')}`);
  });
});

describe('the poll sensor through ps-list (where /proc is not mounted)', { skip }, () => {
  const tmp = tempDir('redline-test-pslist-');
  after(() => tmp.cleanup());

  test('processes only: the programs the subject runs, no false detach', async () => {
    const log = join(tmp.dir, 'ps.ndjson');
    const r = await redline(['exec', '--sensor', 'poll', '--poll-source', 'ps-list', '--mode', 'enforce', '--record-events', '--socket', 'off', '--log', log, '--', 'sh', '-c', 'sleep 0.5; sleep 0.5']);
    assert.equal(r.code, 0, r.stderr);
    const recs = readLog(log);
    assert.equal(recs.find((x) => x.kind === 'daemon' && x.phase === 'sensor' && x.sensor === 'poll')?.source, 'ps-list');
    assert.ok(events(recs, 'exec').some((e) => (e.args as string[]).join(' ') === 'sleep 0.5'), 'the sleeps were seen');
    assert.deepEqual(alertsOf(recs).map((a) => a.rule), []);
  });

  test('a ps-list that cannot run stops the command with the reason (exit 2), nothing left frozen', async () => {
    const log = join(tmp.dir, 'nops.ndjson');
    const r = await redline(['exec', '--sensor', 'poll', '--poll-source', 'ps-list', '--mode', 'enforce', '--fail-closed', '--socket', 'off', '--log', log, '--', '/bin/sleep', '1'], { PATH: '/var/empty' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot monitor: the poll sensor cannot list processes \(ps-list\): spawn ps ENOENT/);
  });
});

describe('without root (nobody)', { skip }, () => {
  const tmp = tempDir('redline-test-nobody-');
  let model: Model;
  const children: ChildProcess[] = [];
  const delegated = join(findCgroupV2Mount() ?? '/sys/fs/cgroup', 'redline-test-delegated');
  before(() => {
    chmodSync(tmp.dir, 0o755);
    model = makeModel(join(tmp.dir, 'model'), 6);
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    removeGroup(delegated);
    tmp.cleanup();
  });

  /** a scratch folder nobody can write in */
  const workDir = (name: string) => {
    const d = join(tmp.dir, name);
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o777);
    return d;
  };
  /** the replication attempt: work in a folder, copy the model there, serve the copy, ask it */
  const attempt = (dir: string) =>
    [
      `cd ${dir}`,
      `cp -r ${model.dir} copy`,
      `python3 ${SERVER} --weights copy/model.safetensors --port-file r.port --lifetime 5 &`,
      'i=0; while [ ! -s r.port ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done',
      `python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:' + open('r.port').read() + '/v1/models', timeout=3).read())" > answered || true`,
      'wait',
    ].join('\n');

  test('exec in enforce mode on a replication attempt: caught, frozen by SIGSTOP of the tree, killed; the log says how', async (t) => {
    const dir = workDir('tree');
    const log = join(dir, 'audit.ndjson');
    const r = await redline(['exec', '--mode', 'enforce', '--socket', 'off', '--weights', model.dir, '--log', log, '--', 'sh', '-c', attempt(dir)], { HOME: dir }, 60_000, USER_UID);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /the poll sensor watches \(the eBPF sensor needs root/);
    const recs = readLog(log);
    const start = recs.find((x) => x.kind === 'trial' && x.phase === 'start') as LogRecord;
    assert.equal(start.sensor, 'poll');
    assert.equal(start.placement, 'process-tree');
    assert.match(String(start.placement_why), /not delegated to this user/);
    const alert = alertsOf(recs).find((a) => a.category === 'weights.copy' || a.category === 'replica.spawn' || a.category === 'replica.serving');
    assert.ok(alert, `caught: ${alertsOf(recs).map((a) => a.summary).join('; ')}`);
    const freeze = recs.find((x) => x.kind === 'action' && x.action === 'freeze') as LogRecord;
    assert.equal(freeze.ok, true);
    assert.equal(freeze.method, 'sigstop');
    assert.ok(recs.some((x) => x.kind === 'action' && x.action === 'kill' && x.ok === true), 'killed after the freeze');
    // (a poll cannot promise to stop the replica before it answers: that is a figure, bench/poll.ts)
    t.diagnostic(`the replica ${hasText(join(dir, 'answered')) ? 'answered before the freeze' : 'never answered'}`);
    // the audit says what watched it
    const a = await redline(['audit', log]);
    assert.match(a.stdout, /sensor poll: signals and syscalls not seen/);
  });

  test('exec in a cgroup delegated to the user: its own group, frozen with cgroup.freeze', async () => {
    const dir = workDir('delegated');
    mkdirSync(delegated, { recursive: true });
    for (const f of ['', 'cgroup.procs', 'cgroup.threads', 'cgroup.subtree_control']) chownSync(join(delegated, f), USER_UID, USER_UID);
    const log = join(dir, 'audit.ndjson');
    // started inside the delegated group, as systemd-run --user --scope -p Delegate=yes would
    const cmd = `echo $$ > ${delegated}/cgroup.procs && exec setpriv --reuid=${USER_UID} --regid=${USER_UID} --clear-groups -- "$0" "$@"`;
    const d = spawn('sh', ['-c', cmd, process.execPath, CLI, 'exec', '--mode', 'enforce', '--socket', 'off', '--weights', model.dir, '--log', log, '--', 'sh', '-c', attempt(dir)], { cwd: ROOT, env: { ...process.env, HOME: dir }, stdio: 'ignore' });
    children.push(d);
    const code = await new Promise<number | null>((res) => d.on('exit', (c) => res(c)));
    assert.equal(code, 3);
    const recs = readLog(log);
    const start = recs.find((x) => x.kind === 'trial' && x.phase === 'start') as LogRecord;
    assert.equal(start.placement, 'delegated-cgroup');
    assert.ok(String(start.cgroup).startsWith(`${delegated}/redline-`), String(start.cgroup));
    const freeze = recs.find((x) => x.kind === 'action' && x.action === 'freeze') as LogRecord;
    assert.equal(freeze.ok, true);
    assert.equal(freeze.method, 'cgroup.freeze');
    assert.equal(existsSync(String(start.cgroup)), false, 'its group is removed at the end');
  });

  test('a protected process that vanishes while the subject runs is a process.kill alert, and the subject is frozen', async () => {
    const dir = workDir('vanished');
    const log = join(dir, 'audit.ndjson');
    const victim = spawn('setpriv', [`--reuid=${USER_UID}`, `--regid=${USER_UID}`, '--clear-groups', 'sleep', '60'], { stdio: 'ignore' });
    children.push(victim);
    const r = await redline(['exec', '--mode', 'enforce', '--socket', 'off', '--protect-pid', String(victim.pid), '--log', log, '--', 'sh', '-c', `sleep 0.5; kill ${victim.pid}; sleep 3`], { HOME: dir }, 60_000, USER_UID);
    assert.equal(r.code, 3, r.stderr);
    const a = alertsOf(readLog(log)).find((x) => x.rule === 'protected-process-vanished') as LogRecord;
    assert.ok(a, 'the vanished process is reported');
    assert.equal(a.category, 'process.kill');
    assert.match(String(a.summary), /gone while \d+ subject processes ran; the poll sensor cannot see signals/);
    assert.ok(((a.event as { subject_pids: number[] }).subject_pids ?? []).length > 0, 'the subject processes alive then are named');
    assert.ok(readLog(log).some((x) => x.kind === 'action' && x.action === 'freeze' && x.ok === true));
  });

  test('a daemon killed outright leaves the process tree stopped by its watchdog (enforce), then killed', async () => {
    const dir = workDir('lost');
    const log = join(dir, 'audit.ndjson');
    const pidFile = join(dir, 'agent.pid');
    const d = startRedline(['exec', '--mode', 'enforce', '--socket', 'off', '--log', log, '--', 'sh', '-c', `echo $$ > ${pidFile}; while :; do sleep 0.1; done`], { HOME: dir }, USER_UID);
    children.push(d.child);
    await waitForRecord(log, (r) => r.kind === 'trial' && r.phase === 'start');
    for (let i = 0; i < 100 && !hasText(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
    const agent = Number(readFileSync(pidFile, 'utf8'));
    // the daemon: the child of `redline exec` (its supervisor)
    process.kill(readLog(log).find((r) => r.kind === 'daemon' && r.phase === 'start')?.daemon_pid as number, 'SIGKILL');
    const lost = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'lost', 10_000);
    assert.equal(lost.subject_frozen, true);
    assert.match(readFileSync(`/proc/${agent}/stat`, 'utf8').split(') ')[1] ?? '', /^[Tt] /, 'the agent is stopped');
    const cleanup = await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'lost-cleanup', 15_000);
    assert.equal(cleanup.killed, true);
    for (let i = 0; i < 50 && existsSync(`/proc/${agent}`); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(existsSync(`/proc/${agent}`), false, 'killed after the grace period');
  });

  test('a subject that stops its monitor (SIGTERM) is never taken for an operator: tamper, frozen first', async () => {
    const dir = workDir('stop');
    const log = join(dir, 'audit.ndjson');
    const pidFile = join(dir, 'agent.pid');
    // the agent signals its parent's parent: the daemon (sh -c's parent is the daemon itself)
    const r = await redline(['exec', '--mode', 'enforce', '--after-trip', 'hold', '--socket', 'off', '--log', log, '--', 'sh', '-c', `echo $$ > ${pidFile}; sleep 0.5; kill -TERM $PPID; sleep 30`], { HOME: dir }, 60_000, USER_UID);
    assert.equal(r.code, 3, r.stderr);
    const recs = readLog(log);
    const a = alertsOf(recs).find((x) => x.rule === 'redline.stop-by-unknown-sender') as LogRecord;
    assert.ok(a, 'the stop is a tamper alert');
    assert.equal(a.category, 'monitor.tamper');
    assert.match(String(a.summary), /SIGTERM reached the daemon, and the poll sensor cannot see signals: the sender is unknown/);
    const freeze = recs.find((x) => x.kind === 'action' && x.action === 'freeze' && x.ok === true) as LogRecord;
    assert.ok(freeze && freeze.seq < (recs.find((x) => x.kind === 'trial' && x.phase === 'end')?.seq ?? Number.POSITIVE_INFINITY), 'frozen before the trial ended');
  });

  test('doctor as nobody says what works: the poll, freezing by SIGSTOP, the rules it starves, the host', async () => {
    const r = await redline(['doctor'], { HOME: tmp.dir }, 60_000, USER_UID);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^no {3}sensor ebpf +the eBPF sensor needs root/m);
    assert.match(r.stdout, /^ok {3}sensor poll +\/proc every 100 ms/m);
    assert.match(r.stdout, /^ok {3}sensor \(auto\) +poll: exec and run pick it/m);
    assert.match(r.stdout, /^ok {3}action freeze +SIGSTOP of the subject's process tree/m);
    assert.match(r.stdout, /^ {2}inactive signal-outside-tree \(/m);
    assert.match(r.stdout, /^ {2}os: .+kernel /m);
    assert.match(r.stdout, /^ {2}memory: [\d.]+ GiB$/m);
  });
});

/** the file is there and says something */
function hasText(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').trim() !== '';
  } catch {
    return false;
  }
}
