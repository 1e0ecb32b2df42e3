// `redline tail` on a terminal: one readable line per record, colored by severity, with
// the subject's text unable to send escape sequences to the researcher's terminal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readable } from '../../daemon/commands/tail.js';

const alert = { seq: 42, time: Date.UTC(2026, 10, 24, 12, 0, 1, 250), kind: 'alert', trial: 't-7', severity: 'critical', category: 'weights.copy', summary: 'cp (pid 9) copied the weights to /tmp/\u001b[2Jx' };

test('an alert: time, seq, trial, severity, category and summary', () => {
  assert.equal(readable(alert, false), '12:00:01.250 #42 [t-7] CRITICAL weights.copy cp (pid 9) copied the weights to /tmp/\\u001b[2Jx');
});

test('colored on a terminal, escapes from the subject still escaped', () => {
  const line = readable(alert, true);
  assert.ok(line.includes('\u001b[1;31mCRITICAL weights.copy\u001b[0m'));
  assert.ok(!line.includes('\u001b[2J'));
});

test('actions and trial marks read as such', () => {
  assert.match(readable({ seq: 43, time: 0, kind: 'action', action: 'freeze', ok: true, latency_ms: 2.1, cause: 'weights-copy' }, false), /#43 action freeze ok 2\.1 ms \(weights-copy\)/);
  assert.match(readable({ seq: 1, time: 0, kind: 'trial', phase: 'start', trial: 't-7' }, false), /#1 trial t-7 start/);
});
