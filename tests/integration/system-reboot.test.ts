// system.reboot (issue 20), safely: no attempt here can reach the host. The reboot syscall is
// issued only without CAP_SYS_BOOT (checked in /proc/self/status first: EPERM) or as the init
// of a pid namespace of its own (checked first: the kernel then kills that init, never the
// host); the tools are copies of /bin/true named reboot, systemctl and init; /proc/sysrq-trigger
// is a file on a tmpfs over /proc in a mount namespace of its own; init is sent SIGCONT. Observe
// mode: every attempt is a critical system.reboot alert that says what the kernel made of it,
// and the benign look-alikes are quiet. Enforce mode: the subject is frozen before its next step.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findExecutable } from '../../daemon/sensors/ebpf/host.js';
import { monitorSkipReason } from '../helpers/host.js';
import { alertsOf, type LogRecord, readLog, redline, tempDir } from '../helpers/redline.js';

// the system's python, which any user may run (a per-user install under /root is not nobody's)
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const skip = monitorSkipReason() ?? (findExecutable('unshare') && findExecutable('setpriv') && findExecutable('python3') ? null : 'needs unshare, setpriv (util-linux) and python3');

describe('system.reboot', { skip: skip ?? false }, () => {
  const tmp = tempDir();
  const bin = join(tmp.dir, 'bin');
  const outer = readlinkSync('/proc/self/ns/pid');
  let observed: LogRecord[] = [];
  const reboots = () => alertsOf(observed).filter((a) => a.category === 'system.reboot');

  before(async () => {
    chmodSync(tmp.dir, 0o755);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(bin, { mode: 0o755 });
    for (const name of ['reboot', 'systemctl', 'init', 'shutdown']) copyFileSync('/bin/true', join(bin, name));
    // reboot(2) only where it cannot succeed: without CAP_SYS_BOOT, or as a namespace's own init
    writeFileSync(
      join(tmp.dir, 'noboot.py'),
      [
        'import ctypes, sys',
        "caps = int([l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1], 16)",
        "if caps & (1 << 22): print('CAP_SYS_BOOT still held: not issuing the call'); sys.exit(3)",
        'ctypes.CDLL(None, use_errno=True).syscall(169, 0xfee1dead, 672274793, 0x01234567, 0)',
      ].join('\n'),
    );
    writeFileSync(
      join(tmp.dir, 'nsinit.py'),
      [
        'import ctypes, os, sys',
        "if os.getpid() != 1 or os.readlink('/proc/self/ns/pid') == sys.argv[1]: print('not the init of a pid namespace of its own: not issuing the call'); sys.exit(3)",
        'ctypes.CDLL(None, use_errno=True).syscall(169, 0xfee1dead, 672274793, 0x01234567, 0)',
        'sys.exit(4)',
      ].join('\n'),
    );
    const script = join(tmp.dir, 'attempts.sh');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        // benign look-alikes first: none of them is an alert
        `${bin}/systemctl status nginx; ${bin}/shutdown --help; ${bin}/init --version; kill -0 1`,
        `${bin}/reboot`,
        `${bin}/systemctl --no-block reboot`,
        `${bin}/init 6`,
        `setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all ${PY} ${tmp.dir}/noboot.py`,
        `unshare --fork --pid --mount-proc ${PY} ${tmp.dir}/nsinit.py '${outer}'`,
        // a tmpfs over /proc in a mount namespace of its own: the write lands in that tmpfs
        "unshare --mount sh -c 'mount -t tmpfs none /proc && : > /proc/sysrq-trigger && echo b > /proc/sysrq-trigger'",
        'kill -CONT 1',
        "unshare --fork --pid sh -c 'kill -CONT 1'",
        'true',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    const log = join(tmp.dir, 'observe.ndjson');
    const r = await redline(['exec', '--mode', 'observe', '--log', log, '--', script], {}, 90_000);
    assert.equal(r.code, 3, r.stderr);
    observed = readLog(log);
  });
  after(() => tmp.cleanup());

  test('the reboot syscall refused without CAP_SYS_BOOT: critical, and says the kernel refused it', () => {
    const a = reboots().find((x) => x.rule === 'reboot-syscall' && String(x.summary).includes('EPERM'));
    assert.ok(a, JSON.stringify(reboots().map((x) => x.summary)));
    assert.equal(a.severity, 'critical');
    assert.match(String(a.summary), /called reboot \(restart\): the kernel refused it \(EPERM\)/);
  });

  test('the reboot syscall as a pid namespace’s own init: it never returned, and the alert says so', () => {
    const a = reboots().find((x) => x.rule === 'reboot-syscall' && String(x.summary).includes('never returned'));
    assert.ok(a, JSON.stringify(reboots().map((x) => x.summary)));
    assert.match(String(a.summary), /python3 \(pid \d+\) called reboot \(restart\): it never returned/);
  });

  test('reboot, systemctl reboot and init 6 as commands; their help, status and version are quiet', () => {
    const cmds = reboots().filter((x) => x.rule === 'reboot-command').map((x) => (x.proc as { args: string[] }).args.slice(1).join(' '));
    assert.deepEqual(cmds, ['', '--no-block reboot', '6']);
    const quiet = alertsOf(observed).filter((x) => ['status nginx', '--help', '--version'].includes((x.proc as { args?: string[] })?.args?.slice(1).join(' ') ?? ''));
    assert.deepEqual(quiet.map((x) => x.rule), []);
  });

  test('a write to /proc/sysrq-trigger, and signals to the host’s init and to a namespace’s init', () => {
    assert.ok(reboots().some((x) => x.rule === 'sysrq-trigger'));
    const inits = reboots().filter((x) => x.rule === 'signal-to-init').map((x) => String(x.summary));
    assert.ok(inits.some((s) => /SIGCONT to init \(pid 1 on the host/.test(s)), JSON.stringify(inits));
    assert.ok(inits.some((s) => /, 1 in its namespace\): delivered/.test(s)), JSON.stringify(inits));
    // kill -0 only asks: not an attempt
    assert.equal(inits.filter((s) => s.includes('SIG0') || s.includes('signal 0')).length, 0);
  });

  for (const [what, attempt] of [
    ['a reboot command', `${'$BIN'}/reboot`],
    ['the reboot syscall', `setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all ${PY} $DIR/noboot.py`],
  ] as const) {
    test(`enforce: ${what} freezes the subject before its next step`, async () => {
      const next = join(tmp.dir, `next-${what.replace(/\W/g, '')}`);
      const script = join(tmp.dir, `enforce-${what.replace(/\W/g, '')}.sh`);
      writeFileSync(script, `#!/bin/sh\nBIN=${bin}; DIR=${tmp.dir}\n${attempt}\nsleep 1\ntouch ${next}\n`);
      chmodSync(script, 0o755);
      const log = join(tmp.dir, `enforce-${what.replace(/\W/g, '')}.ndjson`);
      const r = await redline(['exec', '--mode', 'enforce', '--log', log, '--', script], {}, 90_000);
      assert.equal(r.code, 3, r.stderr);
      const recs = readLog(log);
      assert.ok(alertsOf(recs).some((a) => a.category === 'system.reboot'));
      assert.ok(recs.some((x) => x.kind === 'action' && x.action === 'freeze' && x.ok === true), 'frozen');
      assert.equal(existsSync(next), false, 'the agent never reached its next step');
    });
  }
});
