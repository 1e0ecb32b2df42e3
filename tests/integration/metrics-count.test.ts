// The Prometheus counter against the log: every alert the log holds is counted once, under its
// category, severity and rule. (A bar run read redline_alerts_total{category="process.kill"} = 1
// with two such alerts in the log: the counter had both; `exec` serves /metrics only while its
// trial runs, so a scrape can come before the last alert, and one query returns one series per
// rule and severity. README "Prometheus" says so.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { monitorSkipReason } from '../helpers/host.js';
import { freePort } from '../helpers/stream.js';
import { alertsOf, readLog, startRedline, stopRedline, tempDir, waitForRecord } from '../helpers/redline.js';

const skip = monitorSkipReason();

function counts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^redline_alerts_total\{category="([^"]*)",severity="([^"]*)",rule="([^"]*)"\} (\d+)$/gm)) out.set(`${m[1]}|${m[2]}|${m[3]}`, Number(m[4]));
  return out;
}

describe('redline_alerts_total against the log', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const victim = spawn('sleep', ['60'], { stdio: 'ignore' });
  after(() => {
    victim.kill('SIGKILL');
    tmp.cleanup();
  });

  test('two kill -CONT of a protected pid, and other alerts: each alert of the log counted once under its labels', async () => {
    const port = await freePort();
    const log = join(tmp.dir, 'metrics.ndjson');
    const ready = join(tmp.dir, 'done-killing');
    const script = `/bin/kill -CONT ${victim.pid}; sleep 0.5; /bin/kill -CONT ${victim.pid}; cat /etc/shadow > /dev/null; touch ${ready}; sleep 30`;
    const d = startRedline(['exec', '--mode', 'observe', '--protect-pid', String(victim.pid), '--metrics', `127.0.0.1:${port}`, '--log', log, '--', 'sh', '-c', script]);
    try {
      await waitForRecord(log, (r) => r.kind === 'trial' && r.phase === 'start');
      // both kills in the log, then a moment for the counter (it counts records once they are on disk)
      await waitForRecord(log, (r) => r.kind === 'alert' && r.category === 'process.kill' && alertsOf(readLog(log)).filter((a) => a.category === 'process.kill').length >= 2, 30_000);
      await new Promise((r) => setTimeout(r, 500));
      const scraped = counts(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
      const fromLog = new Map<string, number>();
      for (const a of alertsOf(readLog(log))) {
        const k = `${a.category}|${a.severity}|${a.rule}`;
        fromLog.set(k, (fromLog.get(k) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries(scraped), Object.fromEntries(fromLog));
      const kills = [...scraped].filter(([k]) => k.startsWith('process.kill|')).reduce((n, [, v]) => n + v, 0);
      assert.equal(kills, 2, 'sum over the process.kill series: both kills');
    } finally {
      await stopRedline(d);
    }
  });
});
