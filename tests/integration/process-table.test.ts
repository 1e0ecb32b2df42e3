// The process table on real processes: seeded from /proc, identity survives pid reuse,
// ancestry survives reparenting to init.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { ancestorsOf, ProcessTable } from '../../daemon/process-table.js';

const started: number[] = [];
after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

function ppidOf(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('process table', () => {
  test('the /proc seed knows this process, its parent and flags', () => {
    const table = new ProcessTable({ isSubject: () => false, monitorPids: [process.pid], protectPids: [1] });
    table.seed();
    const me = table.get(process.pid);
    assert.ok(me);
    assert.equal(me.monitor, true);
    assert.equal(me.protected, true);
    assert.equal(me.parent?.pid, process.ppid);
    assert.equal(table.get(1)?.protected, true);
    assert.ok(table.size > 5);
  });

  test('ancestry is kept after the parent exits and init adopts the child', async () => {
    // sh starts a sleep in the background and prints its pid, then waits to be told to exit
    const mid = spawn('/bin/sh', ['-c', 'sleep 30 & echo $!; read x'], { stdio: ['pipe', 'pipe', 'ignore'] });
    const grandchild = await new Promise<number>((res) => mid.stdout.once('data', (d) => res(Number(String(d).trim()))));
    started.push(grandchild);
    const table = new ProcessTable({ isSubject: () => true });
    table.seed();
    const before = table.get(grandchild);
    assert.ok(before);
    assert.equal(before.parent?.pid, mid.pid);
    mid.stdin.end();
    await new Promise((r) => mid.once('exit', r));
    await new Promise((r) => setTimeout(r, 50));
    assert.notEqual(ppidOf(grandchild), mid.pid, 'the kernel reparented it');
    table.apply({ type: 'exit', time: Date.now(), pid: mid.pid as number });
    table.apply({ type: 'reparent', time: Date.now(), pid: grandchild, old_ppid: mid.pid as number, new_ppid: ppidOf(grandchild) });
    const after = table.get(grandchild);
    assert.equal(after?.ppid, ppidOf(grandchild));
    const names = ancestorsOf(after as NonNullable<typeof after>).map((a) => a.pid);
    assert.equal(names[0], mid.pid, 'the exited parent is still its first ancestor');
    assert.equal(names[1], process.pid);
  });

  test('pid reuse gives a new identity, the old entry is not confused with it', () => {
    const table = new ProcessTable({ isSubject: () => true });
    const parent = 999_990;
    const reused = 999_991;
    table.apply({ type: 'fork', time: 1_000, pid: parent, child_pid: reused });
    const first = table.get(reused);
    table.apply({ type: 'exit', time: 2_000, pid: reused });
    table.apply({ type: 'fork', time: 3_000, pid: parent, child_pid: reused });
    const second = table.get(reused);
    assert.ok(first && second);
    assert.notEqual(first.key, second.key);
    assert.equal(first.alive, false);
    assert.equal(second.alive, true);
  });

  test('a signal to an unknown, vanished pid resolves to an unknown, non-subject process', () => {
    const table = new ProcessTable({ isSubject: () => true });
    const e = table.apply({ type: 'signal', time: 1, pid: 999_980, syscall: 'kill', target_pid: 999_981, sig: 9 });
    assert.equal(e.target?.known, false);
    assert.equal(e.target?.subject, false);
    assert.equal(e.proc.subject, true);
  });

  test('kill -1 is a broadcast; kill 0 targets the sender’s own group', () => {
    const table = new ProcessTable({ isSubject: () => false });
    table.seed();
    const b = table.apply({ type: 'signal', time: 1, pid: process.pid, syscall: 'kill', target_pid: -1, sig: 9 });
    assert.equal(b.broadcast, true);
    const g = table.apply({ type: 'signal', time: 1, pid: process.pid, syscall: 'kill', target_pid: 0, sig: 0 });
    assert.equal(g.group, table.get(process.pid)?.pgid);
    assert.ok(g.targets.some((t) => t.pid === process.pid));
  });

  test('a replica outside the subject is tied to the subject command that names it, after that command exited', async () => {
    const copy = '/srv/elsewhere/model-copy/model.safetensors';
    // the subject's `ssh host '…'` (or `systemd-run …`): its command line names the replica's weights
    const asker = spawn('/bin/sh', ['-c', 'sleep 30', 'ask', `python3 serve.py ${copy}`], { stdio: 'ignore' });
    // the replica, started by someone else
    const replica = spawn('/bin/sh', ['-c', 'sleep 30', 'serve.py', copy], { stdio: 'ignore' });
    const other = spawn('/bin/sh', ['-c', 'sleep 30', 'serve.py', '/srv/unrelated/model.safetensors'], { stdio: 'ignore' });
    for (const c of [asker, replica, other]) started.push(c.pid as number);
    await new Promise((r) => setTimeout(r, 100));
    const subjects = new Set([asker.pid]);
    const table = new ProcessTable({ isSubject: (pid) => subjects.has(pid) });
    table.apply({ type: 'exec', time: 1, pid: asker.pid as number, filename: '/bin/sh', comm: 'sh' });
    table.apply({ type: 'exit', time: 2, pid: asker.pid as number });
    const load = (pid: number) => table.apply({ type: 'weights_load', time: 3, pid, path: copy, weight: copy, generation: 1, how: 'mmap', bytes: 1, share: 1, outside_subject: true });
    const tied = load(replica.pid as number).event;
    assert.equal(tied.type === 'weights_load' && tied.tie, 'command');
    assert.equal(tied.type === 'weights_load' && tied.tie_pid, asker.pid);
    // nothing the subject ran names the other one: only the time ties it
    const untied = load(other.pid as number).event;
    assert.equal(untied.type === 'weights_load' && untied.tie, 'time');
    // a job file the sensor found is the tie
    const job = table.apply({ type: 'weights_load', time: 4, pid: other.pid as number, path: copy, weight: copy, generation: 1, how: 'mmap', bytes: 1, share: 1, outside_subject: true, job_file: '/var/spool/x', job_arg: copy }).event;
    assert.equal(job.type === 'weights_load' && job.tie, 'job_file');
  });
});
