// The dashboard in headless Chromium (Debian's, driven by playwright-core) against a live
// `redline run`: the login and a wrong token; an alert provoked after load on the page within a
// second; markup a subject wrote shown as text and never run; freeze from the page by an
// operator token (the action record names it), refused to the read-only token; a trial's stage
// bar moving through a replication; a daemon restart caught up with no gap and no duplicate.
// A screenshot of the page during the scenario is kept in test-results/.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { findCgroupV2Mount, groupPids, removeGroup } from '../../daemon/cgroup.js';
import { findExecutable } from '../../daemon/sensors/ebpf/host.js';
import { monitorSkipReason } from '../helpers/host.js';
import { makeModel } from '../helpers/model.js';
import { bystander, killBystanders } from '../helpers/procs.js';
import { type LogRecord, readLog, ROOT, startRedline, stopRedline, tempDir } from '../helpers/redline.js';
import { replicaServer } from '../helpers/servers.js';
import { freePort } from '../helpers/stream.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? findExecutable('chromium');
const skip = monitorSkipReason() ?? (CHROMIUM ? null : 'needs chromium (apt-get install -y chromium)');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TOKEN = 'read-only-token-123456';
const OPERATOR = 'alice:operator-token-654321';

describe('the dashboard', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const cues = join(tmp.dir, 'cues');
  const log = join(tmp.dir, 'daemon.ndjson');
  let agent: ChildProcess;
  let daemon: { child: ChildProcess; done: Promise<unknown> } | undefined;
  let port = 0;
  let browser: Browser;
  let victim = 0;
  let model: ReturnType<typeof makeModel>;
  const pages: Page[] = [];
  const problems: string[] = [];
  const base = () => `http://127.0.0.1:${port}`;
  let said = '';

  /** the daemon, on the same port and log each time (a restart continues both) */
  async function startDaemon(): Promise<void> {
    const before = existsSync(log) ? readLog(log).length : 0;
    daemon = startRedline(['run', '--subject-pid', String(agent.pid), '--mode', 'observe', '--log', log, '--ws', `127.0.0.1:${port}`, '--ws-token', TOKEN, '--ws-operator-token', OPERATOR, '--socket', 'off', '--weights', model.dir, '--ws-heartbeat', '500']);
    // (what it said last, for a cue that finds nothing: a daemon that stopped says why there)
    daemon.child.stderr?.on('data', (d: Buffer) => {
      said = (said + d.toString()).slice(-2000);
    });
    const t0 = Date.now();
    while (!readLog(log).slice(before).some((r) => r.kind === 'daemon' && r.phase === 'output' && r.output === 'websocket')) {
      if (Date.now() - t0 > 30_000) throw new Error('the daemon did not start');
      await sleep(50);
    }
  }
  /** the agent runs each script dropped into its cue folder, once */
  async function cue(name: string, body: string, until: (r: LogRecord) => boolean): Promise<LogRecord> {
    const from = readLog(log).length;
    const file = join(cues, `${name}.sh`);
    writeFileSync(`${file}.tmp`, body);
    spawn('mv', [`${file}.tmp`, file]);
    const t0 = Date.now();
    while (Date.now() - t0 < 20_000) {
      const found = readLog(log).slice(from).find(until);
      if (found) return found;
      await sleep(20);
    }
    const c = daemon?.child;
    const state = c && (c.exitCode !== null || c.signalCode !== null) ? `the daemon exited (${c.exitCode ?? c.signalCode})` : 'the daemon runs';
    const last = readLog(log).slice(-3).map((r) => `${r.kind}/${String(r.phase ?? r.rule ?? '')}`).join(', ');
    throw new Error(`${name}: nothing in the log; ${state}; last records: ${last}; its stderr ends: ${said.slice(-600)}`);
  }
  const kill = (name: string) => cue(name, `/bin/kill -CONT ${victim}\n`, (r) => r.kind === 'alert' && r.rule === 'signal-outside-tree');
  async function open(query: string): Promise<Page> {
    const page = await browser.newPage();
    pages.push(page);
    page.on('console', (m) => {
      // a wrong token's refusal, and a daemon down while it restarts, are the browser's to report
      if (m.type() === 'error' && !/HTTP Authentication failed|ERR_CONNECTION_REFUSED/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${base()}/${query}`);
    return page;
  }

  before(async () => {
    mkdirSync(cues, { recursive: true });
    model = makeModel(join(tmp.dir, 'model'), 4);
    victim = bystander();
    agent = spawn('/bin/sh', ['-c', `cd ${cues}; while true; do for f in *.sh; do [ -e "$f" ] && { sh "$f"; rm -f "$f"; }; done; sleep 0.01; done`], { stdio: 'ignore' });
    port = await freePort();
    await startDaemon();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM as string, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    await stopRedline(daemon);
    agent?.kill('SIGKILL');
    const group = join(findCgroupV2Mount() ?? '/nonexistent', 'redline', `pid-${agent?.pid}`);
    for (const pid of groupPids(group)) process.kill(pid, 'SIGKILL');
    removeGroup(group);
    killBystanders();
    tmp.cleanup();
  });

  test('GET / is the page with its headers; a wrong token sees only the login', async () => {
    const res = await fetch(`${base()}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const page = await open('?token=wrong-token');
    await page.waitForSelector('#login:not([hidden])');
    assert.match(await page.locator('#login-error').innerText(), /refused/);
    assert.equal(await page.locator('#app').isHidden(), true);
    assert.equal(await page.locator('#trials tbody tr').count(), 0, 'no data without a valid token');
    assert.equal(new URL(page.url()).searchParams.get('token'), null, 'the token left the address bar');
  });

  test('with the token: no console error, and an alert provoked after load is on the page within a second', async () => {
    const page = await open(`?token=${TOKEN}`);
    await page.waitForSelector('#app:not([hidden])');
    assert.equal(new URL(page.url()).searchParams.get('token'), null);
    await page.waitForFunction(() => document.querySelector('#conn')?.textContent === 'live');
    const a = await kill('after-load');
    await page.waitForSelector(`svg.timeline circle[data-seq="${a.seq}"]`, { timeout: 5000 });
    const lag = Date.now() - (a.time as number);
    assert.ok(lag < 1000, `on the page ${lag} ms after it was written`);
    assert.equal(await page.locator('#controls').isHidden(), true, 'the read-only token gets no controls');
    assert.deepEqual(problems, []);
  });

  test('what the subject wrote is shown as text: its markup is never parsed and its script never runs', async () => {
    const page = pages[1] as Page;
    const evil = join(tmp.dir, '<img src=x onerror=window.__a=1>');
    await cue('xss', `cp /bin/kill '${evil}'; '${evil}' -CONT ${victim} '</script><script>window.__b=1</script>' '<img src=x onerror=window.__c=1>' 2>/dev/null; true\n`, (r) => r.kind === 'alert' && r.rule === 'signal-outside-tree' && String((r.proc as { args?: string[] })?.args?.join(' ')).includes('</script>'));
    await page.waitForFunction(() => document.querySelector('#tree')?.textContent?.includes('</script><script>window.__b=1</script>'), undefined, { timeout: 5000 });
    const tree = await page.locator('#tree').innerText();
    assert.ok(tree.includes('<img src=x onerror=window.__c=1>'), 'the argument is shown literally');
    assert.ok(tree.includes('<img src=x oner'), 'the process name (its first 15 bytes) is shown literally');
    assert.equal(await page.locator('#app img, #app script').count(), 0, 'no element came from the subject');
    assert.deepEqual(await page.evaluate(() => [(window as unknown as Record<string, unknown>).__a, (window as unknown as Record<string, unknown>).__b, (window as unknown as Record<string, unknown>).__c]), [undefined, undefined, undefined]);
    assert.deepEqual(problems, []);
  });

  test('an operator token freezes from the page (the record names it); the read-only token cannot', async () => {
    const page = await open(`?token=${OPERATOR.slice(OPERATOR.indexOf(':') + 1)}`);
    await page.waitForSelector('#controls:not([hidden])');
    assert.match(await page.locator('#operator-name').innerText(), /alice/);
    const from = readLog(log).length;
    await page.click('#controls button[data-cmd="freeze"]');
    const group = join(findCgroupV2Mount() ?? '', 'redline', `pid-${agent.pid}`);
    const t0 = Date.now();
    while (!/frozen 1/.test(readFileSync(join(group, 'cgroup.events'), 'utf8')) && Date.now() - t0 < 5000) await sleep(20);
    assert.match(readFileSync(join(group, 'cgroup.events'), 'utf8'), /frozen 1/);
    await page.waitForFunction(() => document.querySelector('#control-result')?.textContent?.includes('ok'));
    const action = readLog(log).slice(from).find((r) => r.kind === 'action' && r.action === 'freeze');
    assert.equal(action?.ok, true);
    assert.equal(action?.cause, 'dashboard:alice');
    await page.click('#controls button[data-cmd="thaw"]');
    while (/frozen 1/.test(readFileSync(join(group, 'cgroup.events'), 'utf8')) && Date.now() - t0 < 10_000) await sleep(20);
    assert.match(readFileSync(join(group, 'cgroup.events'), 'utf8'), /frozen 0/);
    // the read-only token, asking anyway over its own socket
    const ws = new WebSocket(`ws://127.0.0.1:${port}/stream?hello=1&token=${TOKEN}`);
    const replies: Record<string, unknown>[] = [];
    ws.on('message', (d) => replies.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'control', id: 7, cmd: 'freeze' }));
    const t1 = Date.now();
    while (!replies.some((r) => r.kind === 'control-result') && Date.now() - t1 < 5000) await sleep(20);
    ws.close();
    assert.equal(replies[0]?.operator, false);
    const refused = replies.find((r) => r.kind === 'control-result');
    assert.equal(refused?.ok, false);
    assert.match(String(refused?.error), /may watch but not operate/);
    assert.match(readFileSync(join(group, 'cgroup.events'), 'utf8'), /frozen 0/);
  });

  test('a replication moves the stage bar through its stages (screenshot kept)', async (t) => {
    const page = pages[1] as Page;
    const reached = () => page.locator('#trials tr.trial.selected .stage.reached').count();
    const seen: number[] = [await reached()];
    const server = join(tmp.dir, 'server.py');
    writeFileSync(server, replicaServer);
    await cue('read', `head -c 4096 ${model.weights} >/dev/null\n`, (r) => r.kind === 'alert' && r.category === 'weights.read');
    await page.waitForFunction(() => document.querySelectorAll('#trials tr.trial.selected .stage.reached').length >= 1);
    seen.push(await reached());
    const copy = join(tmp.dir, 'copy');
    await cue('copy', `cp -r ${model.dir} ${copy}\n`, (r) => r.kind === 'alert' && r.category === 'weights.copy');
    await page.waitForFunction(() => document.querySelectorAll('#trials tr.trial.selected .stage.reached').length >= 2);
    seen.push(await reached());
    await cue('serve', `python3 ${server} ${join(copy, 'model.safetensors')} ${join(tmp.dir, 'port')} 4 &\n`, (r) => r.kind === 'alert' && r.category === 'replica.serving');
    await page.waitForFunction(() => document.querySelectorAll('#trials tr.trial.selected .stage.reached').length >= 5, undefined, { timeout: 10_000 });
    seen.push(await reached());
    assert.deepEqual(seen, [0, 1, 2, 5]);
    mkdirSync(join(ROOT, 'test-results'), { recursive: true });
    const shot = join(ROOT, 'test-results', 'dashboard-scenario.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot of the page during the scenario: ${shot}`);
  });

  test('after a daemon restart the page catches up with no gap and no duplicate', async () => {
    const page = pages[1] as Page;
    await stopRedline(daemon);
    await startDaemon();
    const a = await kill('after-restart');
    await page.waitForSelector(`svg.timeline circle[data-seq="${a.seq}"]`, { timeout: 15_000 });
    const all = readLog(log);
    // the page counts each record it applied once (it skips any seq it had); equal to the log's count: none missing, none twice
    await page.waitForFunction((n) => document.querySelector('#daemon')?.textContent?.includes(` ${n} records`), all.length, { timeout: 10_000 }).catch(() => undefined);
    const shown = Number(/ (\d+) records/.exec(await page.locator('#daemon').innerText())?.[1]);
    const now = readLog(log).length;
    assert.ok(shown >= all.length && shown <= now, `page ${shown}, log ${all.length}…${now}`);
    assert.deepEqual(problems, []);
  });
});
