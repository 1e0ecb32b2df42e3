// The dashboard in headless Chromium against a live `redline run`. Prints JSON.
// 1. alert written → visible in the page: 100 kills, one at a time, each a fresh /bin/kill by
//    the subject; the page marks when each alert's dot appears (a MutationObserver, page clock),
//    against the record's own time (the host's clock, the same one).
// 2. the page after 10,000 records: a log prefilled with 10,000 records (alerts of 20 trials,
//    with their processes), replayed to a fresh page: time until all are shown, JS heap used.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { findCgroupV2Mount, groupPids, removeGroup } from '../daemon/cgroup.js';
import { AuditLog } from '../daemon/outputs/audit-log.js';
import { summary } from './stats.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'daemon/cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TOKEN = 'bench-token-123456';
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '').split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as Record<string, unknown>);
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) as string;

async function daemon(log: string, agentPid: number, port: number): Promise<ChildProcess> {
  const before = existsSync(log) ? lines(log).length : 0;
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '--subject-pid', String(agentPid), '--mode', 'observe', '--log', log, '--ws', `127.0.0.1:${port}`, '--ws-token', TOKEN, '--socket', 'off'], { cwd: ROOT, stdio: 'ignore' });
  const t0 = Date.now();
  while (!lines(log).slice(before).some((r) => r.kind === 'daemon' && r.phase === 'output' && r.output === 'websocket')) {
    // a daemon that does not come up is not left behind
    if (Date.now() - t0 > 30_000 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error('the daemon did not start');
    }
    await sleep(50);
  }
  return child;
}

async function stop(c: ChildProcess): Promise<void> {
  const gone = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  await Promise.race([gone, sleep(20_000)]);
}

const victim = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
const cues = join(dir, 'cues');
mkdirSync(cues);
const agent = spawn('/bin/sh', ['-c', `cd ${cues}; while true; do for f in *.sh; do [ -e "$f" ] && { sh "$f"; rm -f "$f"; }; done; sleep 0.005; done`], { stdio: 'ignore' });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  // 1. latency
  const log = join(dir, 'live.ndjson');
  const port = 17000 + (process.pid % 1000);
  let d = await daemon(log, agent.pid as number, port);
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/?token=${TOKEN}`);
  await page.waitForSelector('#app:not([hidden])');
  await page.evaluate(() => {
    const w = window as unknown as { seen: Record<string, number> };
    w.seen = {};
    new MutationObserver(() => {
      for (const c of document.querySelectorAll('svg.timeline circle[data-seq]')) {
        const s = c.getAttribute('data-seq') as string;
        w.seen[s] ??= Date.now();
      }
    }).observe(document.body, { subtree: true, childList: true });
  });
  const lags: number[] = [];
  for (let i = 0; i < 100; i++) {
    const from = lines(log).length;
    writeFileSync(join(cues, `k${i}.sh.tmp`), `/bin/kill -CONT ${victim.pid}\n`);
    spawn('mv', [join(cues, `k${i}.sh.tmp`), join(cues, `k${i}.sh`)]);
    let rec: Record<string, unknown> | undefined;
    while (!rec) {
      rec = lines(log).slice(from).find((r) => r.kind === 'alert' && r.rule === 'signal-outside-tree');
      if (!rec) await sleep(5);
    }
    const seq = String(rec.seq);
    let seen: number | undefined;
    for (let w = 0; w < 400 && seen === undefined; w++) {
      seen = await page.evaluate((s) => (window as unknown as { seen: Record<string, number> }).seen[s], seq);
      if (seen === undefined) await sleep(5);
    }
    if (seen !== undefined) lags.push(seen - (rec.time as number));
    await sleep(30);
  }
  console.log(JSON.stringify({ bench: 'dashboard-alert-visible', unit: 'ms', alerts: 100, clock: 'record time (ms) to the dot in the page', ...summary(lags) }));
  await stop(d);

  // 2. 10,000 records
  const big = join(dir, 'big.ndjson');
  const l = AuditLog.open(big);
  l.append({ kind: 'daemon', phase: 'start', host: 'bench', mode: 'observe', version: 'bench' });
  for (let i = 0; i < 10_000; i++) {
    const trial = `t-${i % 20}`;
    const pid = 2000 + (i % 300);
    l.append({ kind: 'alert', trial, rule: 'r', category: ['weights.read', 'process.kill', 'process.detach', 'network.listen'][i % 4], severity: ['medium', 'high', 'low', 'info'][i % 4], summary: `python3 (pid ${pid}) did thing ${i}`, pid, proc: { pid, comm: 'python3', args: ['python3', 'agent.py', String(i)], ancestors: [{ pid: 1000 + (i % 20), comm: 'sh' }, { pid: 1, comm: 'init' }] } });
  }
  l.close();
  d = await daemon(big, agent.pid as number, port);
  const fresh = await browser.newPage();
  const t0 = Date.now();
  await fresh.goto(`http://127.0.0.1:${port}/?token=${TOKEN}`);
  await fresh.waitForFunction(() => Number(/ (\d+) records/.exec(document.querySelector('#daemon')?.textContent ?? '')?.[1]) >= 10_001, undefined, { timeout: 120_000 });
  const loadMs = Date.now() - t0;
  const cdp = await fresh.context().newCDPSession(fresh);
  await cdp.send('HeapProfiler.collectGarbage');
  const heap = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
  // and still responsive: a click on another trial re-renders within
  const c0 = Date.now();
  await fresh.click('#trials tr.trial >> nth=5');
  await fresh.waitForSelector('#detail-title:has-text("t-5")');
  console.log(JSON.stringify({ bench: 'dashboard-10k-records', records: 10_001, trials: 20, load_ms: loadMs, js_heap_used_mb: Math.round(heap.usedSize / 1e5) / 10, select_trial_ms: Date.now() - c0 }));
  await stop(d);
} finally {
  await browser.close();
  agent.kill('SIGKILL');
  victim.kill('SIGKILL');
  const group = join(findCgroupV2Mount() ?? '/nonexistent', 'redline', `pid-${agent.pid}`);
  for (const pid of groupPids(group)) process.kill(pid, 'SIGKILL');
  removeGroup(group);
  rmSync(dir, { recursive: true, force: true });
}
