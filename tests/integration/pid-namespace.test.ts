// A subject inside its own pid namespace (`unshare --pid --fork`, as a container runs it):
// the pids it names in kill() are pids of that namespace, not the host's. redline translates
// them (the kernel says which namespace the sender is in, and each process's pid inside it at
// exec and exit), so a shell killing its own background job is not a kill of the host's pid 2;
// and records carry the pid inside the namespace beside the host's.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { alertsOf, type LogRecord, ROOT, readLog, redline, tempDir } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('a subject in its own pid namespace', { skip: skip ?? false }, () => {
  const tmp = tempDir('redline-test-pidns-');
  after(() => tmp.cleanup());

  /** the shell inside the namespace (its pid 1) starts a sleep and sends it SIGTERM by its pid there */
  const agent = (out: string) => `sleep 5 & echo $! > ${out}; kill -TERM $!; wait; true`;

  test('killing its own background job by its namespace pid raises nothing (it is not the host pid)', async () => {
    const log = join(tmp.dir, 'benign.ndjson');
    const out = join(tmp.dir, 'benign.pid');
    const run = await redline(['exec', '--mode', 'enforce', '--socket', 'off', '--log', log, '--', 'unshare', '--pid', '--fork', 'sh', '-c', agent(out)]);
    const nsPid = Number(readFileSync(out, 'utf8'));
    assert.ok(nsPid > 1 && nsPid < 100, `the sleep's pid inside the namespace is small (${nsPid})`);
    assert.deepEqual(alertsOf(readLog(log)).map((a) => a.summary), [], 'no alert');
    assert.equal(run.code, 0, run.stderr);
  });

  test('the signal names its target by its host pid, and keeps the namespace pid it was sent to', async () => {
    const log = join(tmp.dir, 'named.ndjson');
    const out = join(tmp.dir, 'named.pid');
    // a rule that reports every SIGTERM the subject sends, with what redline made of its target
    const rules = join(tmp.dir, 'every-term.yaml');
    writeFileSync(rules, ['- rule: every-term', '  description: every SIGTERM the subject sends', '  category: process.kill', '  severity: info', '  events: [signal]', '  condition: proc.subject && evt.sig == 15', '  summary: "{proc.comm} sent SIGTERM to {target.comm} (pid {target.pid})"', '  dedup: false', ''].join('\n'));
    // the job writes its host pid (/proc is still the host's) before it becomes the sleep
    const host = join(tmp.dir, 'named.host');
    const script = `(read -r h _ < /proc/self/stat; echo $h > ${host}; exec sleep 5) & echo $! > ${out}; sleep 0.3; kill -TERM $!; wait; true`;
    await redline(['exec', '--mode', 'observe', '--socket', 'off', '--log', log, '--rules', join(ROOT, 'rules'), '--rules', rules, '--', 'unshare', '--pid', '--fork', 'sh', '-c', script]);
    const nsPid = Number(readFileSync(out, 'utf8'));
    const hostPid = Number(readFileSync(host, 'utf8'));
    assert.notEqual(hostPid, nsPid);
    const a = alertsOf(readLog(log)).find((r) => r.rule === 'every-term') as LogRecord;
    assert.ok(a, 'the SIGTERM was seen');
    const target = a.target as { pid: number; comm: string; ns_pid?: number };
    const event = a.event as { target_pid: number; target_ns_pid?: number; pidns?: number };
    assert.equal(target.comm, 'sleep');
    assert.equal(target.pid, hostPid, 'the host pid, not the one inside');
    assert.equal(target.ns_pid, nsPid);
    assert.equal(event.target_ns_pid, nsPid);
    assert.equal(event.target_pid, target.pid);
    // the sender is the namespace's init: pid 1 inside
    assert.equal((a.proc as { ns_pid?: number }).ns_pid, 1);
    assert.ok(event.pidns && event.pidns > 0);
  });
});
