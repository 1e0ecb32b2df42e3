// `redline run --subject-pid` (the tree is moved into a group of its own) and
// `--subject-uid` (every process of that uid), each catching a kill through eBPF.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { findCgroupV2Mount, groupPids, removeGroup } from '../../daemon/cgroup.js';
import { monitorSkipReason } from '../helpers/host.js';
import { bystander, killBystanders } from '../helpers/procs.js';
import { readLog, startRedline, stopRedline, tempDir, waitForRecord } from '../helpers/redline.js';

const skip = monitorSkipReason();

describe('run --subject-pid', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const trigger = join(tmp.dir, 'go');
  let agent: ChildProcess;
  let daemon: ReturnType<typeof startRedline> | undefined;
  let group = '';
  after(async () => {
    await stopRedline(daemon);
    if (group) for (const pid of groupPids(group)) process.kill(pid, 'SIGKILL');
    agent?.kill('SIGKILL');
    if (group) {
      const t0 = Date.now();
      while (groupPids(group).length > 0 && Date.now() - t0 < 2000);
      removeGroup(group);
    }
    killBystanders();
    tmp.cleanup();
  });

  test('the running tree is adopted into a group and its kill is caught', async () => {
    const victim = bystander();
    // an agent already running before redline starts, with a child of its own
    // … and a server it started earlier: a listener older than redline, found by the /proc/net poll
    const portFile = join(tmp.dir, 'port');
    const server = `import socket, time\ns = socket.socket()\ns.bind(("0.0.0.0", 0))\ns.listen()\nopen("${portFile}", "w").write(str(s.getsockname()[1]))\ntime.sleep(600)`;
    agent = spawn('/bin/sh', ['-c', `python3 -c '${server}' & sleep 600 & while [ ! -e ${trigger} ]; do sleep 0.05; done; kill -CONT ${victim}; wait`], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 25));
    const port = Number(readFileSync(portFile, 'utf8'));
    const log = join(tmp.dir, 'pid.ndjson');
    daemon = startRedline(['run', '--subject-pid', String(agent.pid), '--log', log, '--mode', 'observe']);
    await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'sensor');
    group = join(findCgroupV2Mount() as string, 'redline', `pid-${agent.pid}`);
    const members = groupPids(group);
    assert.ok(members.includes(agent.pid as number), 'the agent was moved');
    assert.ok(members.length >= 2, 'its child was moved too');
    writeFileSync(trigger, '');
    const a = await waitForRecord(log, (r) => r.kind === 'alert' && r.rule === 'signal-outside-tree');
    assert.equal((a.target as { pid: number }).pid, victim);
    const listen = await waitForRecord(log, (r) => r.kind === 'event' && r.type === 'port.listen' && r.port === port);
    assert.equal(listen.seen_by, 'poll');
    assert.equal(listen.addr, '0.0.0.0');
    const exposed = await waitForRecord(log, (r) => r.kind === 'alert' && r.rule === 'port-listen-exposed');
    assert.equal(exposed.severity, 'medium');
    assert.equal((exposed.event as { port: number }).port, port);
    const before = readFileSync(`/proc/${process.pid}/cgroup`, 'utf8');
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.done).code, 0);
    // a clean stop gives the tree back: the agent runs on where it was, and no group is left
    assert.equal(existsSync(group), false, 'the adopted group is removed');
    assert.equal(readFileSync(`/proc/${agent.pid}/cgroup`, 'utf8'), before, 'the agent is back in the group it came from');
    const release = readLog(log).find((r) => r.kind === 'daemon' && r.phase === 'release');
    assert.ok((release?.released as number[]).includes(agent.pid as number), 'the release is logged');
  });
});

describe('run --subject-uid', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const uid = 64_998;
  let daemon: ReturnType<typeof startRedline> | undefined;
  after(async () => {
    await stopRedline(daemon);
    spawn('pkill', ['-9', '-U', String(uid)]);
    killBystanders();
    tmp.cleanup();
  });

  test('a process of that uid signalling a root process is caught as the attempt it is: refused by the kernel, low', async () => {
    const victim = bystander();
    const log = join(tmp.dir, 'uid.ndjson');
    daemon = startRedline(['run', '--subject-uid', String(uid), '--log', log, '--mode', 'observe']);
    await waitForRecord(log, (r) => r.kind === 'daemon' && r.phase === 'sensor');
    const c = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '/bin/sh', '-c', `kill -CONT ${victim}`], { stdio: 'ignore' });
    await new Promise((r) => c.once('exit', r));
    const a = await waitForRecord(log, (r) => r.kind === 'alert' && r.rule === 'signal-refused');
    assert.equal((a.target as { pid: number }).pid, victim);
    assert.equal((a.proc as { uid: number }).uid, uid);
    assert.equal(a.severity, 'low');
    assert.match(String(a.summary), /refused it \(EPERM\)/);
    assert.ok(existsSync(log) && readFileSync(log, 'utf8').includes(`uid ${uid}`));
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.done).code, 0);
  });
});
