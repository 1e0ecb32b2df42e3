// The README's first command: `redline demo` shows a replication attempt caught live,
// observed in full, then frozen at the copy, with verdicts and an HTML report.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { redline, type Run, USER_UID } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('redline demo', { skip: skip ?? false }, () => {
  let run: Run;
  let dir = '';
  let seconds = 0;
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('runs both phases and exits 0, leaving only the logs and the report', async () => {
    const t0 = Date.now();
    run = await redline(['demo'], {}, 120_000);
    seconds = (Date.now() - t0) / 1000;
    dir = /The logs stay in (\S+) /.exec(run.stdout)?.[1] ?? '';
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.deepEqual(readdirSync(dir).sort(), ['demo.ndjson', 'report.html']);
  });

  test('observe mode: every step runs, and each is reported as it happens', () => {
    const observe = run.stdout.split('── enforce')[0] ?? '';
    assert.match(observe, /the agent reached step 6 of 6/);
    for (const c of ['weights.copy', 'replica.spawn', 'replica.listen', 'replica.serving', 'process.kill']) assert.match(observe, new RegExp(`\\+[\\d.]+s ALERT \\[\\w+\\] ${c.replace('.', '\\.')}: `), c);
    assert.match(observe, /ACTION freeze: skipped \(observe mode\)/);
  });

  test('enforce mode: frozen at the copy, evidence logged, killed; no replica ever runs', () => {
    const enforce = (run.stdout.split('── enforce')[1] ?? '').split('── verdicts')[0] ?? '';
    assert.match(enforce, /ALERT \[critical\] weights\.copy/);
    assert.match(enforce, /ACTION freeze: done in [\d.]+ ms/);
    assert.match(enforce, /SNAPSHOT of the \d+ frozen subject processes logged/);
    assert.match(enforce, /ACTION kill: done/);
    // frozen at the copy (during it, or right after): never as far as checking a replica
    assert.match(enforce, /the agent reached step [23] of 6/);
    assert.doesNotMatch(enforce, /replica\.(spawn|listen|serving)/);
  });

  test('verdicts, an intact chain and the report', (t) => {
    assert.match(run.stdout, /audit chain: intact/);
    assert.match(run.stdout, /demo-observe: TRIPPED, reached replica\.serving/);
    assert.match(run.stdout, /demo-enforce: TRIPPED, reached weights\.copy, frozen at/);
    const html = /HTML report: (\S+)/.exec(run.stdout)?.[1] ?? '';
    assert.ok(existsSync(html));
    // the < 30 s target is a figure in the README, not a timed assertion
    t.diagnostic(`the demo took ${seconds.toFixed(1)} s`);
  });
});

// the same demo as a user: no root, no bpftrace, so the poll sensor; it says what it cannot see
describe('redline demo without root (nobody, the poll sensor)', { skip: process.getuid?.() === 0 ? false : 'runs the demo as nobody through setpriv, which needs root' }, () => {
  let run: Run;
  let dir = '';
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('runs both phases as nobody and exits 0, saying it watches with the poll and why', async () => {
    run = await redline(['demo'], { HOME: '/tmp' }, 120_000, USER_UID);
    dir = /The logs stay in (\S+) /.exec(run.stdout)?.[1] ?? '';
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /Watching with the poll sensor \(\/proc every 100 ms\), because the eBPF sensor needs root/);
    assert.match(run.stdout, /It cannot see signals: the kill in step 5 shows as the original server vanishing/);
  });

  test('observe mode: the copy, the replica serving and the original server gone are each reported', () => {
    const observe = run.stdout.split('── enforce')[0] ?? '';
    assert.match(observe, /the agent reached step 6 of 6/);
    for (const c of ['weights.copy', 'replica.serving', 'process.kill']) assert.match(observe, new RegExp(`ALERT \\[\\w+\\] ${c.replace('.', '\\.')}: `), c);
    assert.match(observe, /process\.kill: .*a protected process, is gone while \d+ subject processes ran/);
  });

  test('enforce mode: frozen with SIGSTOP before the original server is killed, then killed', () => {
    const enforce = (run.stdout.split('── enforce')[1] ?? '').split('── verdicts')[0] ?? '';
    assert.match(enforce, /ACTION freeze: done in [\d.]+ ms/);
    assert.match(enforce, /ACTION kill: done/);
    assert.match(enforce, /the agent reached step [234] of 6/);
    assert.match(run.stdout, /demo-enforce: TRIPPED, reached (weights\.copy|replica\.serving), frozen at/);
    assert.match(run.stdout, /audit chain: intact/);
  });
});
