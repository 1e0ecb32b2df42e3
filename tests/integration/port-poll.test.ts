// The /proc/net poll on real sockets: a listener that existed before the poll started is
// found and attributed to its process, UDP binds count, a listener inside another network
// namespace is found through that namespace's tables, other processes' listeners are not
// reported, and a close is reported once the socket is gone.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import type { ListenCloseEvent, ListenEvent } from '../../daemon/events.js';
import { PortPoller } from '../../daemon/sensors/ports/poll.js';

const started: ChildProcess[] = [];

/** a python process holding one socket; resolves with its pid and port once it is bound */
function holder(kind: 'tcp' | 'udp', host = '127.0.0.1', wrap: string[] = []): Promise<{ pid: number; port: number; child: ChildProcess }> {
  const code = [
    'import socket, sys, time',
    `s = socket.socket(socket.AF_INET, socket.SOCK_${kind === 'tcp' ? 'STREAM' : 'DGRAM'})`,
    `s.bind(("${host}", 0))`,
    kind === 'tcp' ? 's.listen()' : 'pass',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const cmd = [...wrap, 'python3', '-c', code];
  const child = spawn(cmd[0] as string, cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(child);
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', (d: Buffer) => resolve({ pid: child.pid as number, port: Number(d.toString().trim()), child }));
    child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
}

function collect(p: PortPoller): (ListenEvent | ListenCloseEvent)[] {
  const out: (ListenEvent | ListenCloseEvent)[] = [];
  p.on('event', (e) => out.push(e));
  return out;
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((r) => child.once('exit', r));
}

after(() => {
  for (const c of started) c.kill('SIGKILL');
});

describe('the /proc/net poll', () => {
  test('a TCP listener older than the poll is found, attributed, and its close reported', async () => {
    const h = await holder('tcp');
    const other = await holder('tcp'); // not the subject's: never reported
    const poller = new PortPoller({ pids: () => (h.child.exitCode === null ? [h.pid] : []), intervalMs: 1000 });
    const seen = collect(poller);
    await poller.tick();
    const l = seen.find((e) => e.type === 'listen') as ListenEvent | undefined;
    assert.ok(l, JSON.stringify(seen));
    assert.equal(l.pid, h.pid);
    assert.equal(l.port, h.port);
    assert.equal(l.proto, 'tcp');
    assert.equal(l.addr, '127.0.0.1');
    assert.equal(l.loopback, true);
    assert.equal(l.seen_by, 'poll');
    assert.ok(!seen.some((e) => e.type === 'listen' && e.port === other.port), 'another process’s listener was reported');
    await poller.tick();
    assert.equal(seen.length, 1, 'a listener is reported once');
    h.child.kill('SIGKILL');
    await exited(h.child);
    await poller.tick();
    const c = seen.find((e) => e.type === 'listen_close');
    assert.ok(c, JSON.stringify(seen));
    assert.equal(c.port, h.port);
    assert.equal(c.pid, h.pid);
  });

  test('a UDP socket bound to a port on all addresses is a listener, not loopback', async () => {
    const h = await holder('udp', '0.0.0.0');
    const poller = new PortPoller({ pids: () => [h.pid], intervalMs: 1000 });
    const seen = collect(poller);
    await poller.tick();
    const l = seen.find((e) => e.type === 'listen') as ListenEvent | undefined;
    assert.ok(l, JSON.stringify(seen));
    assert.equal(l.proto, 'udp');
    assert.equal(l.port, h.port);
    assert.equal(l.loopback, false);
    h.child.kill('SIGKILL');
  });

  test('a listener in a network namespace of its own is found through that namespace', { skip: process.getuid?.() === 0 ? false : 'needs root to make a network namespace (unshare -n)' }, async () => {
    const h = await holder('tcp', '127.0.0.1', ['unshare', '-n', 'sh', '-c', 'ip link set lo up 2>/dev/null; exec "$@"', 'sh']);
    const poller = new PortPoller({ pids: () => [h.pid], intervalMs: 1000 });
    const seen = collect(poller);
    await poller.tick();
    const l = seen.find((e) => e.type === 'listen') as ListenEvent | undefined;
    assert.ok(l, JSON.stringify(seen));
    assert.equal(l.pid, h.pid);
    assert.equal(l.port, h.port);
    h.child.kill('SIGKILL');
  });
});
