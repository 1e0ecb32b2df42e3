import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeAddr, isLoopback, parseProcNet, TCP_LISTEN, UDP_UNCONNECTED } from '../../daemon/sensors/ports/parse-net.js';

const fx = (n: string) => readFileSync(new URL(`../fixtures/proc-net/${n}`, import.meta.url), 'utf8');

test('tcp: a listener on 127.0.0.1:47001 and both ends of a connection to it', () => {
  const socks = parseProcNet(fx('tcp'), 'tcp');
  const listen = socks.find((s) => s.localPort === 47001 && s.state === TCP_LISTEN);
  assert.deepEqual(listen, { proto: 'tcp', localAddr: '127.0.0.1', localPort: 47001, remoteAddr: '0.0.0.0', remotePort: 0, state: TCP_LISTEN, uid: 0, inode: 292593 });
  assert.ok(socks.some((s) => s.remotePort === 47001 && s.state === 1 && s.inode === 292595));
});

test('tcp6: a listener on [::]:47002', () => {
  const l = parseProcNet(fx('tcp6'), 'tcp6').find((s) => s.localPort === 47002);
  assert.equal(l?.localAddr, '::');
  assert.equal(l?.state, TCP_LISTEN);
});

test('udp: a bound socket on 0.0.0.0:47003', () => {
  const u = parseProcNet(fx('udp'), 'udp').find((s) => s.localPort === 47003);
  assert.equal(u?.localAddr, '0.0.0.0');
  assert.equal(u?.state, UDP_UNCONNECTED);
  assert.equal(u?.inode, 292596);
});

test('addresses: IPv4, IPv6, mapped, and garbage', () => {
  assert.equal(decodeAddr('0100007F'), '127.0.0.1');
  assert.equal(decodeAddr('00000000000000000000000001000000'), '::1');
  assert.equal(decodeAddr('0000000000000000FFFF00000100007F'), '::ffff:7f00:1');
  assert.equal(decodeAddr('B80D0120000000000000000001000000'), '2001:db8::1');
  assert.equal(decodeAddr('xyz'), null);
  assert.deepEqual(parseProcNet('header\n garbage line\n', 'tcp'), []);
});

test('loopback', () => {
  assert.ok(isLoopback('127.0.0.1') && isLoopback('127.3.2.1') && isLoopback('::1') && isLoopback('::ffff:127.0.0.1') && isLoopback('::ffff:7f00:1'));
  assert.ok(!isLoopback('10.0.0.1') && !isLoopback('::') && !isLoopback('2001:db8::1'));
});
