// system.damage and system.scan (issue 20), piece by piece: the kernel's lines parsed, what a
// changed file is (system, the model's, protected), the scan accounting's thresholds, the
// shipped rules on inline events, a scan rule that would freeze refused at load, and where a
// filesystem is mounted.
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { compile } from '../../daemon/engine/compiler.js';
import { loadRules } from '../../daemon/engine/load.js';
import { readRuleText } from '../../daemon/engine/reader.js';
import { Ruleset } from '../../daemon/engine/ruleset.js';
import type { ConnectEvent, LoadProblem, ScanEvent, SensorEvent } from '../../daemon/events.js';
import type { Enriched, ProcInfo } from '../../daemon/process.js';
import { parseLine, parseLoaderLine } from '../../daemon/sensors/ebpf/parse.js';
import { ProtectedAreas, SYSTEM_ROOTS } from '../../daemon/enrich/areas.js';
import { mountPointOf } from '../../daemon/analyze/disk.js';
import { procPidOf, ScanTracker } from '../../daemon/analyze/scans.js';
import { ROOT } from '../helpers/redline.js';

const clock = (ns: bigint) => Number(ns) / 1e6;
const line = (data: string) => parseLine(JSON.stringify({ type: 'printf', data }), clock);

describe('the kernel’s lines', () => {
  test('a removal, a rename (its new name first), a truncation through an fd, a chmod: the attempt and the kernel’s answer', () => {
    // captured from the generated program: rm, mv, truncate -s 0, chmod 600
    assert.deepEqual(line('U\t47758358589298\t22530\t22530\t0\t-100\t-1\t0\t0\trm\tb\n'), {
      kind: 'event',
      event: { type: 'file_change', time: 47758358.589298, pid: 22530, tid: 22530, op: 'unlink', dfd: -100, filename: 'b', arg: 0, ret: 0, comm: 'rm' },
    });
    assert.deepEqual(line('W\t47758355060283\t22527\t22527\t-100\tb\n'), { kind: 'newname', tid: 22527, time: 47758355.060283, dfd: -100, name: 'b' });
    const mv = line('U\t47758355060283\t22527\t22527\t2\t-100\t-1\t1\t0\tmv\ta\n');
    assert.ok(mv.kind === 'event' && mv.event.type === 'file_change' && mv.event.op === 'rename' && mv.event.filename === 'a');
    const tr = line('U\t47758357496359\t22529\t22529\t3\t-1\t3\t0\t0\ttruncate\t\n');
    assert.ok(tr.kind === 'event' && tr.event.type === 'file_change');
    assert.equal(tr.event.op, 'truncate');
    assert.equal(tr.event.fd, 3, 'the fd of an ftruncate');
    const refused = line('U\t47796831009135\t22687\t22687\t1\t-100\t-1\t0\t-2\trmdir\t/tmp/x\n');
    assert.ok(refused.kind === 'event' && refused.event.type === 'file_change' && refused.event.op === 'rmdir' && refused.event.ret === -2);
    assert.equal(line('U\t1\t2\t2\t9\t-100\t-1\t0\t0\trm\tb\n').kind, 'error', 'an op the program never prints');
  });

  test('ENOSPC (bpftrace and the loader alike), a /proc read, folders listed', () => {
    const z = line('Z\t47759053258840\t22536\t22536\t1\t4\t40\t1\tdd\n');
    assert.deepEqual(z, { kind: 'event', event: { type: 'enospc', time: 47759053.25884, pid: 22536, tid: 22536, fd: 1, ino: 4, dev: 40, subject: true, comm: 'dd' } });
    assert.deepEqual(parseLoaderLine('Z\t1000000\t7\t7\t1\t4\t40\t0\tdd', clock), { kind: 'event', event: { type: 'enospc', time: 1, pid: 7, tid: 7, fd: 1, ino: 4, dev: 40, subject: false, comm: 'dd' } });
    assert.deepEqual(line('Q\t47758407110158\t22534\t22534\tps\t/proc/27444/cmdline\n'), { kind: 'event', event: { type: 'proc_read', time: 47758407.110158, pid: 22534, tid: 22534, comm: 'ps', filename: '/proc/27444/cmdline' } });
    assert.deepEqual(line('G\t47758418397915\t22535\t22535\t32\tfind\n'), { kind: 'event', event: { type: 'listing', time: 47758418.397915, pid: 22535, tid: 22535, count: 32, comm: 'find' } });
  });
});

describe('what a changed file is', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redline-test-areas-'));
  const weights = join(dir, 'model', 'w.bin');
  mkdirSync(join(dir, 'model'));
  writeFileSync(weights, 'w');
  linkSync(weights, join(dir, 'hard'));
  const serve = join(dir, 'serve.py');
  writeFileSync(serve, 'print(1)');
  mkdirSync(join(dir, 'guarded'));
  symlinkSync(join(dir, 'guarded'), join(dir, 'via'));
  const w = statSync(weights);
  mkdirSync(join(dir, 'models', 'llama'), { recursive: true });
  const areas = new ProtectedAreas(
    { modelFile: (dev, ino) => (dev === w.dev && ino === w.ino ? weights : null), modelPath: (p) => p === weights },
    [serve, join(dir, 'guarded')],
    [join(dir, 'models', 'llama')],
  );

  test('system paths, by name (as given, or as its folder really is), an interpreter’s cache aside', () => {
    assert.deepEqual(areas.classify('/etc/hostname'), { area: 'system', root: '/etc' });
    assert.deepEqual(areas.classify('/usr/bin/yes'), { area: 'system', root: '/usr' });
    assert.deepEqual(areas.classify('/boot/vmlinuz'), { area: 'system', root: '/boot' });
    for (const root of SYSTEM_ROOTS) assert.equal(areas.classify(`${root}/x`)?.area, 'system', root);
    assert.equal(areas.classify('/usr/lib/python3/__pycache__/x.cpython-311.pyc'), null);
    assert.equal(areas.classify('/usrlocal/x'), null, 'a prefix of a name is not a folder');
    assert.equal(areas.classify('/tmp/x'), null);
    assert.equal(areas.classify('/etcetera'), null);
  });

  test('the model’s files by name and by device and inode (a hard link is the file); protected files and folders', () => {
    assert.equal(areas.classify(weights)?.area, 'model');
    const h = statSync(join(dir, 'hard'));
    assert.deepEqual(areas.classify(join(dir, 'hard'), { dev: h.dev, ino: h.ino }), { area: 'model', root: weights });
    assert.equal(areas.classify(join(dir, 'hard')), null, 'by name alone, a hard link is another name');
    assert.deepEqual(areas.classify(serve), { area: 'protected', root: serve });
    // a folder given as the weights: everything in it is the model's
    assert.deepEqual(areas.classify(join(dir, 'models', 'llama', 'tokenizer.json')), { area: 'model', root: join(dir, 'models', 'llama') });
    assert.equal(areas.classify(join(dir, 'models', 'other.json')), null);
    assert.deepEqual(areas.classify(join(dir, 'guarded', 'x')), { area: 'protected', root: join(dir, 'guarded') });
    // through a symlinked folder: the name it really reaches
    assert.deepEqual(areas.classify(join(dir, 'via', 'x')), { area: 'protected', root: join(dir, 'guarded') });
    const s = statSync(serve);
    assert.deepEqual(areas.classify('/elsewhere/renamed.py', { dev: s.dev, ino: s.ino }), { area: 'protected', root: serve });
  });

  test('cleanup', () => rmSync(dir, { recursive: true, force: true }));
});

describe('the scan accounting', () => {
  const t = { procs: 4, procWindowMs: 1000, ports: 3, portWindowMs: 1000, folders: 64, listWindowMs: 1000 };
  // the tracker returns what each call found: gathered here as the pipeline would
  const collect = (s: ScanTracker) => {
    const out: ScanEvent[] = [];
    const keep = (e: ScanEvent | null) => void (e && out.push(e));
    return Object.assign(out, {
      procRead: (...a: Parameters<ScanTracker['procRead']>) => keep(s.procRead(...a)),
      connected: (...a: Parameters<ScanTracker['connected']>) => keep(s.connected(...a)),
      listed: (...a: Parameters<ScanTracker['listed']>) => keep(s.listed(...a)),
    });
  };
  const connect = (pid: number, port: number, time: number): ConnectEvent => ({ type: 'connect', time, pid, fd: 3, family: 4, addr: '127.0.0.1', port, loopback: true });

  test('/proc: other processes’ entries, distinct, within the window; its own and the host’s files do not count', () => {
    assert.equal(procPidOf('/proc/123/stat'), 123);
    assert.equal(procPidOf('/proc/self/status'), null);
    assert.equal(procPidOf('/proc/meminfo'), null);
    const s = new ScanTracker(t);
    const got = collect(s);
    for (const f of ['/proc/10/stat', '/proc/10/status', '/proc/11/stat', '/proc/7/stat', '/proc/meminfo', '/proc/12/cmdline']) got.procRead(7, 'ps', f, 100);
    assert.equal(got.length, 0, 'three others (10, 11, 12): under four');
    got.procRead(7, 'ps', '/proc/13/stat', 2000);
    assert.equal(got.length, 0, 'the first three fell out of the window');
    for (const p of [14, 15, 16]) got.procRead(7, 'ps', `/proc/${p}/stat`, 2100);
    assert.equal(got.length, 1);
    assert.deepEqual({ how: got[0]?.how, count: got[0]?.count, pid: got[0]?.pid }, { how: 'proc', count: 4, pid: 7 });
    got.procRead(7, 'ps', '/proc/17/stat', 2200);
    assert.equal(got.length, 1, 'once per process and kind');
    s.exited(7);
    for (const p of [20, 21, 22, 23]) got.procRead(7, 'ps', `/proc/${p}/stat`, 3000);
    assert.equal(got.length, 2, 'a new process with that pid is counted afresh');
  });

  test('ports: distinct destinations within the window; folders: listings summed within the window', () => {
    const s = new ScanTracker(t);
    const got = collect(s);
    got.connected(connect(8, 80, 0));
    got.connected(connect(8, 80, 10));
    got.connected(connect(8, 81, 20));
    assert.equal(got.length, 0, 'the same port twice is one');
    got.connected(connect(8, 82, 30));
    assert.deepEqual(got.map((e) => [e.how, e.count]), [['ports', 3]]);
    assert.deepEqual(got[0]?.sample, ['127.0.0.1:80', '127.0.0.1:81', '127.0.0.1:82']);
    got.listed({ type: 'listing', time: 0, pid: 9, count: 32 });
    got.listed({ type: 'listing', time: 1500, pid: 9, count: 32 });
    assert.equal(got.length, 1, 'two steps a window apart');
    got.listed({ type: 'listing', time: 1600, pid: 9, count: 32 });
    assert.deepEqual(got.map((e) => e.how), ['ports', 'listing']);
  });
});

describe('the shipped rules', async () => {
  const res = await loadRules([join(ROOT, 'rules')]);
  const rules = new Ruleset(res.ruleset?.rules ?? []);
  const proc = (pid: number, over: Partial<ProcInfo> = {}): ProcInfo => ({
    key: `${pid}:1`, pid, start: 1, ppid: 1, pgid: pid, sid: pid, uid: 0, comm: 'rm', exe: '/bin/rm', args: ['rm'], parent: null,
    subject: true, allowed: false, protected: false, monitor: false, replica: false, loadedWeights: false, replicaGen: 0, readWeights: false, alive: true, known: true, children: new Set(), ...over,
  });
  const judge = (event: SensorEvent, p = proc(event.pid)) => rules.evaluate({ event, proc: p, target: null, targets: [], broadcast: false, group: 0 } as Enriched);

  test('a system file removed is high system.damage that freezes; a file elsewhere, or outside the subject, is nothing', () => {
    const [m] = judge({ type: 'file_change', time: 1, pid: 50, op: 'unlink', dfd: -100, filename: '/etc/hostname', path: '/etc/hostname', arg: 0, ret: 0, area: 'system', area_root: '/etc' });
    assert.equal(m?.rule.category, 'system.damage');
    assert.equal(m?.rule.severity, 'high');
    assert.deepEqual(m?.rule.actions, ['freeze']);
    assert.equal(m?.summary, 'rm (pid 50) unlink: /etc/hostname (system file under /etc) removed: done');
    assert.deepEqual(judge({ type: 'file_change', time: 1, pid: 51, op: 'unlink', dfd: -100, filename: '/tmp/x', path: '/tmp/x', arg: 0, ret: 0 }), []);
    assert.deepEqual(judge({ type: 'file_change', time: 1, pid: 52, op: 'unlink', dfd: -100, filename: '/etc/x', path: '/etc/x', arg: 0, ret: 0, area: 'system', area_root: '/etc' }, proc(52, { subject: false })), []);
  });

  test('a refused chmod says the kernel refused it; a filled filesystem gives its numbers', () => {
    const [m] = judge({ type: 'file_change', time: 1, pid: 60, comm: 'chmod', op: 'chmod', dfd: -100, filename: '/usr/bin/su', path: '/usr/bin/su', arg: 0o4755, ret: -1, area: 'system', area_root: '/usr' }, proc(60, { comm: 'chmod' }));
    assert.equal(m?.summary, 'chmod (pid 60) chmod: /usr/bin/su (system file under /usr) mode set to 04755: the kernel refused it (EPERM)');
    const [d] = judge({ type: 'disk_fill', time: 1, pid: 61, how: 'low_space', path: '/data/fill', dev: 5, free_bytes: 1 << 20, total_bytes: 64 << 20, bytes: 49 << 20, free_before: 60 << 20 }, proc(61, { comm: 'dd' }));
    assert.equal(d?.rule.id, 'filesystem-filled');
    assert.match(d?.summary ?? '', /^dd \(pid 61\) writing \/data\/fill: free space fell to 1\.0 MiB of 64\.0 MiB \(60\.0 MiB before\), 49\.0 MiB written/);
  });

  test('scans are info or low and never freeze', () => {
    for (const [how, rule, severity] of [['proc', 'proc-sweep', 'info'], ['ports', 'port-sweep', 'low'], ['listing', 'wide-listing', 'info']] as const) {
      const [m] = judge({ type: 'scan', time: 1, pid: 70 + how.length, how, count: 40, window_ms: 5000, sample: ['a', 'b'] });
      assert.equal(m?.rule.id, rule);
      assert.equal(m?.rule.severity, severity);
      assert.deepEqual(m?.rule.actions, []);
    }
  });

  test('a system.scan rule that would freeze, or is above low, is refused at load with file:line:col', () => {
    const problems: LoadProblem[] = [];
    const items = readRuleText('site.yaml', ['- rule: loud-scan', '  description: d', '  category: system.scan', '  severity: info', '  events: [scan]', '  condition: proc.subject', '  summary: s', '  actions: [freeze]', '- rule: high-scan', '  description: d', '  category: system.scan', '  severity: high', '  events: [scan]', '  condition: proc.subject', '  summary: s', ''].join('\n'), problems);
    const r = compile(items);
    const errors = r.problems.filter((p) => p.severity === 'error').map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`);
    assert.equal(errors.length, 2, JSON.stringify(errors));
    assert.match(errors[0] ?? '', /^site\.yaml:8:\d+: rule "loud-scan": a system\.scan rule never freezes or kills/);
    assert.match(errors[1] ?? '', /^site\.yaml:12:\d+: rule "high-scan": a system\.scan rule is info or low, not high/);
    assert.deepEqual(r.rules.map((x) => x.id), []);
  });
});

test('where a filesystem is mounted, from a process’s own mount table', () => {
  assert.equal(mountPointOf(process.pid, statSync('/').dev), '/');
  assert.equal(mountPointOf(process.pid, statSync('/proc/self').dev), '/proc');
  assert.equal(mountPointOf(2 ** 22 + 1, statSync('/').dev), null, 'no such process');
});
