// The guard's lines (the loader's T lines, redline-guard's K lines) parsed into the events the
// rules judge, and the shipped rules on them: what each attempt becomes, and what it does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGuardLine } from '../../daemon/guard/parse.js';
import { seccompEntry, lsmReason } from '../../daemon/guard/index.js';
import { parseLoaderLine } from '../../daemon/sensors/ebpf/parse.js';
import { loadRules } from '../../daemon/engine/load.js';
import { shippedRulesDir } from '../../daemon/config/schema.js';
import { ProcessTable } from '../../daemon/process-table.js';
import type { SensorEvent } from '../../daemon/events.js';

const clock = (ns: bigint) => Number(ns) / 1e6;

function event(line: string): SensorEvent {
  const p = parseLoaderLine(line, clock);
  assert.equal(p.kind, 'event', JSON.stringify(p));
  return (p as { event: SensorEvent }).event;
}

test('T lines: a refused ptrace seize, bpf(), a module load; a signal and a reboot the seccomp filter refused', () => {
  assert.deepEqual(event('T\t5000000\t40\t41\t101\t-1\t16902\t777\t0\tpython3'), { type: 'attempt', time: 5, pid: 40, tid: 41, syscall: 'ptrace', ret: -1, request: 0x4206, target_pid: 777, comm: 'python3' });
  assert.deepEqual(event('T\t5000000\t40\t40\t321\t-1\t5\t0\t0\tbpftool'), { type: 'attempt', time: 5, pid: 40, tid: 40, syscall: 'bpf', ret: -1, request: 5, comm: 'bpftool' });
  assert.equal((event('T\t1\t40\t40\t313\t-1\t3\t0\t0\tinsmod') as { syscall: string }).syscall, 'finit_module');
  // kill(777, SIGSTOP): the signal is the second argument; tgkill's the third
  assert.deepEqual(event('T\t5000000\t40\t40\t62\t-1\t777\t19\t0\tsh'), { type: 'signal', time: 5, pid: 40, tid: 40, syscall: 'kill', target_pid: 777, sig: 19, ret: -1, refused_by: 'seccomp', comm: 'sh' });
  assert.equal((event('T\t1\t40\t40\t234\t-1\t777\t780\t9\tsh') as { sig: number }).sig, 9);
  assert.deepEqual(event('T\t5000000\t40\t40\t169\t-1\t4276215469\t672274793\t1126301404\tpython3'), { type: 'reboot', time: 5, pid: 40, tid: 40, syscall: 'reboot', cmd: 0x4321fedc, ret: -1, refused_by: 'seccomp', comm: 'python3' });
  // a call the lines never name, and a short line: errors, never events
  assert.equal(parseLoaderLine('T\t1\t40\t40\t999\t-1\t0\t0\t0\tx', clock).kind, 'error');
  assert.equal(parseLoaderLine('T\t1\t40\t40\t101', clock).kind, 'error');
});

test('K lines: refused by the BPF LSM guard, let through in observe mode, rate-limited counts; garbage is an error', () => {
  const k = parseGuardLine('K\t2000000\t50\t51\tptrace\t1\t900\t1\t2\t0\t\tgdb', clock);
  assert.deepEqual(k, { kind: 'event', event: { type: 'attempt', time: 2, pid: 50, tid: 51, syscall: 'ptrace', target_pid: 900, request: 2, refused_by: 'lsm', comm: 'gdb' } });
  const move = parseGuardLine('K\t2000000\t50\t50\tmove\t0\t901\t0\t4242\t7\tcgroup.procs\tsh', clock);
  assert.deepEqual(move, { kind: 'event', event: { type: 'attempt', time: 2, pid: 50, tid: 50, syscall: 'cgroup_move', target_pid: 901, request: 4242, would_refuse: true, suppressed: 7, file: 'cgroup.procs', comm: 'sh' } });
  assert.deepEqual(parseGuardLine('Lost 3 events', clock), { kind: 'lost', count: 3 });
  assert.deepEqual(parseGuardLine('ok m 42', clock), { kind: 'answer', ok: true, text: 'm 42' });
  assert.equal(parseGuardLine('K\tx\t1', clock).kind, 'error');
  assert.equal(parseGuardLine('K\t1\t50\t50\tunknown\t1\t0\t0\t0\t0\t\tsh', clock).kind, 'error');
});

test('REDLINE_GUARD=off: neither guard is offered, and the reason says so', () => {
  const before = process.env.REDLINE_GUARD;
  process.env.REDLINE_GUARD = 'off';
  try {
    assert.equal(seccompEntry(), null);
    assert.equal(lsmReason(), 'turned off (REDLINE_GUARD=off)');
  } finally {
    if (before === undefined) delete process.env.REDLINE_GUARD;
    else process.env.REDLINE_GUARD = before;
  }
});

test('the shipped rules: ptrace of the monitor is tamper, of another process a kill, bpf() tamper; a subject tracing its own child is nothing', () => {
  const { ruleset } = loadRules([shippedRulesDir()]);
  assert.ok(ruleset);
  const self = process.pid;
  const table = new ProcessTable({ isSubject: (pid) => pid === 1_000_001 || pid === 1_000_002, allowPids: [], protectPids: [], monitorPids: [self] });
  const judge = (ev: SensorEvent) => ruleset.evaluate(table.apply(ev)).map((m) => [m.rule.id, m.rule.category]);
  const base = { type: 'attempt', time: Date.now(), pid: 1_000_001, tid: 1_000_001, comm: 'python3' } as const;
  assert.deepEqual(judge({ ...base, syscall: 'ptrace', request: 0x4206, target_pid: self, ret: -1 }), [['trace-monitor', 'monitor.tamper']]);
  // pid 1 is outside any subject: a seize of it is a door to killing it
  assert.deepEqual(judge({ ...base, syscall: 'ptrace', request: 16, target_pid: 1, ret: 0 }), [['trace-outside', 'process.kill']]);
  assert.deepEqual(judge({ ...base, syscall: 'bpf', request: 5, ret: -1 }), [['kernel-tamper', 'monitor.tamper']]);
  // (its own child, as the table learns of it: by the fork)
  table.apply({ type: 'fork', time: Date.now(), pid: 1_000_001, tid: 1_000_001, child_pid: 1_000_002, comm: 'python3' });
  assert.deepEqual(judge({ ...base, syscall: 'ptrace', request: 16, target_pid: 1_000_002, ret: 0 }), []);
});
