import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { argvOf, type BpftraceLine, parseLine, parseLoaderLine } from '../../daemon/sensors/ebpf/parse.js';
import { generateScript } from '../../daemon/sensors/ebpf/script.js';

const clock = (ns: bigint) => Number(ns) / 1e6;
const lines = readFileSync(new URL('../fixtures/bpftrace/output.jsonl', import.meta.url), 'utf8').split('\n').filter(Boolean);
const parsed: BpftraceLine[] = lines.map((l) => parseLine(l, clock));
const events = parsed.flatMap((p) => (p.kind === 'event' ? [p.event] : []));

test('attached_probes is recognised with its probe count', () => {
  assert.deepEqual(parsed[0], { kind: 'attached', probes: 8 });
});

test('fork, kill, exit, exec and setsid lines become typed events', () => {
  assert.deepEqual(events[0], { type: 'fork', time: 751325.986271, pid: 4115, tid: 4115, child_pid: 4116, comm: 'sh' });
  assert.deepEqual(events[1], { type: 'signal', time: 751326.626843, pid: 4115, tid: 4115, uid: 0, syscall: 'kill', target_pid: 4116, sig: 9, ret: 0, pidns: 4026531836, comm: 'sh' });
  assert.equal(events[2]?.type, 'exit');
  const exec = events.find((e) => e.type === 'exec');
  // the host's pid namespace: no ns_pid
  assert.deepEqual(exec, { type: 'exec', time: 751330.889064, pid: 4117, tid: 4117, comm: 'setsid', filename: '/usr/bin/setsid', pidns: 4026531836 });
  assert.ok(events.some((e) => e.type === 'setsid' && e.pid === 4117));
});

test('kill -1 and process-group kills keep the raw target', () => {
  const sigs = events.filter((e) => e.type === 'signal');
  assert.ok(sigs.some((e) => e.type === 'signal' && e.target_pid === -1));
  assert.ok(sigs.some((e) => e.type === 'signal' && e.target_pid === -4115));
});

test('a signal line carries the kernel’s answer: refused, delivered, or sent by a caller that died of it', () => {
  const at = (line: string) => parseLine(JSON.stringify({ type: 'printf', data: `${line}\n` }), clock);
  // printed at the syscall's exit, with the entry's time: kill(99999, SIGKILL) → -ESRCH
  assert.deepEqual(at('S\t1000000\t7\t7\t0\t99999\t9\t1000\t-3\t4026531836\tbash'), { kind: 'event', event: { type: 'signal', time: 1, pid: 7, tid: 7, uid: 1000, syscall: 'kill', target_pid: 99999, sig: 9, ret: -3, pidns: 4026531836, comm: 'bash' } });
  // tgkill (index 2) refused with -EPERM
  const eperm = at('S\t1000000\t7\t8\t2\t1\t15\t1000\t-1\t4026531836\tpython3');
  assert.ok(eperm.kind === 'event' && eperm.event.type === 'signal' && eperm.event.syscall === 'tgkill' && eperm.event.ret === -1);
  // kill -9 -1 killed its own caller before the syscall returned: printed at its exit, as sent
  const died = at('S\t1000000\t7\t7\t0\t-1\t9\t1000\t1\t4026531836\tsh');
  assert.ok(died.kind === 'event' && died.event.type === 'signal' && died.event.ret === 0 && died.event.target_pid === -1);
  // an index past the syscalls, or no result field: malformed
  assert.equal(at('S\t1000000\t7\t7\t9\t1\t9\t0\t0\t4026531836\tsh').kind, 'error');
  assert.equal(at('S\t1000000\t7\t7\t0\t1\t9\t0').kind, 'error');
  // no pid namespace (a line of the program before it printed one): malformed, not misread
  assert.equal(at('S\t1000000\t7\t7\t0\t1\t9\t0\t0\tsh').kind, 'error');
});

test('a SIGKILL by another door: the door from the syscall its sender was in, the victim named by the kernel', () => {
  const at = (line: string) => parseLine(JSON.stringify({ type: 'printf', data: `${line}\n` }), clock);
  // a write to a group's cgroup.kill (syscall 1): one line per process the kernel killed
  assert.deepEqual(at('V\t1000000\t7\t7\t4321\t9\t1\t0\tsleep\tsh'), {
    kind: 'event', event: { type: 'signal', time: 1, pid: 7, tid: 7, syscall: 'write', nr: 1, target_pid: 4321, sig: 9, ret: 0, target_comm: 'sleep', comm: 'sh' },
  });
  const door = (nr: number) => {
    const l = at(`V\t1000000\t7\t7\t4321\t9\t${nr}\t0\tsleep\tpython3`);
    return l.kind === 'event' && l.event.type === 'signal' ? l.event.syscall : l.kind;
  };
  assert.equal(door(20), 'write');
  assert.equal(door(101), 'ptrace');
  // no syscall (a page fault that woke the OOM killer)
  assert.equal(door(-1), 'kernel');
  // the sender's comm may hold a tab; a line cut short is malformed
  const tab = at('V\t1000000\t7\t7\t4321\t9\t1\t0\tsleep\tmy\tagent');
  assert.ok(tab.kind === 'event' && tab.event.comm === 'my\tagent');
  assert.equal(at('V\t1000000\t7\t7\t4321\t9\t1\t0').kind, 'error');
  // the kernel program drops the signal syscalls (their own lines), exit and exec (the caller's own threads)
  const s = generateScript({ kind: 'cgroup', path: '/sys/fs/cgroup/unified/redline/t1' }, { selfPid: 4242 });
  const probe = s.slice(s.indexOf('tracepoint:signal:signal_generate'));
  assert.match(probe.slice(0, probe.indexOf('\n')), /args->sig == 9 && args->pid != tid\//);
  for (const nr of [62, 200, 234, 424, 231, 59]) assert.match(probe, new RegExp(`\\$nr != ${nr} `));
});

test('a reboot line: the attempt with the kernel’s answer, or none for a caller that never returned', () => {
  const at = (line: string) => parseLine(JSON.stringify({ type: 'printf', data: `${line}\n` }), clock);
  // reboot(RESTART) refused with -EPERM (cmd printed as a signed 64-bit value of the unsigned int)
  assert.deepEqual(at('R\t2000000\t9\t9\t0\t19088743\t-1\tpython3'), { kind: 'event', event: { type: 'reboot', time: 2, pid: 9, tid: 9, syscall: 'reboot', cmd: 0x01234567, ret: -1, comm: 'python3' } });
  // POWER_OFF (0x4321FEDC) from a namespace's init, which never returned: no ret
  const never = at('R\t2000000\t9\t9\t0\t1126301404\t1\tpython3');
  assert.ok(never.kind === 'event' && never.event.type === 'reboot' && never.event.cmd === 0x4321fedc && never.event.ret === undefined);
  // HALT's cmd (0xCDEF0123) has the high bit set: read back unsigned
  const halt = at('R\t2000000\t9\t9\t0\t-839974621\t-1\tsh');
  assert.ok(halt.kind === 'event' && halt.event.type === 'reboot' && halt.event.cmd === 0xcdef0123);
  // kexec_file_load (index 2); an index past them is malformed
  const kexec = at('R\t2000000\t9\t9\t2\t0\t-1\tkexec');
  assert.ok(kexec.kind === 'event' && kexec.event.type === 'reboot' && kexec.event.syscall === 'kexec_file_load');
  assert.equal(at('R\t2000000\t9\t9\t3\t0\t-1\tsh').kind, 'error');
  // the program has the reboot probes, and the kexec ones only where the kernel has them
  const script = generateScript({ kind: 'uid', uid: 1000 });
  assert.match(script, /tracepoint:syscalls:sys_enter_reboot /);
  assert.match(script, /tracepoint:sched:sched_process_exit \/@btn\[tid\]\//);
});

test('an exec inside a pid namespace carries the pid there and the namespace', () => {
  const at = (line: string) => parseLine(JSON.stringify({ type: 'printf', data: `${line}\n` }), clock);
  assert.deepEqual(at('X\t1000000\t3411\t3411\t1\t4026532999\tsh\t/usr/bin/sh'), { kind: 'event', event: { type: 'exec', time: 1, pid: 3411, tid: 3411, comm: 'sh', filename: '/usr/bin/sh', pidns: 4026532999, ns_pid: 1 } });
  assert.equal(at('X\t1000000\t3411\t3411\tsh\t/usr/bin/sh').kind, 'error');
});

test('the echo of the daemon’s ping is a pong with its time', () => {
  assert.deepEqual(parseLine(JSON.stringify({ type: 'printf', data: 'P\t2000000\t42\t42\n' }), clock), { kind: 'pong', time: 2 });
});

test('pidfd_send_signal keeps the fd and marks the target unresolved', () => {
  const p = events.find((e) => e.type === 'signal' && e.syscall === 'pidfd_send_signal');
  assert.ok(p && p.type === 'signal');
  assert.equal(p.pidfd, 3);
  assert.equal(p.target_unresolved, true);
});

test('lost events in JSON and text form are counted', () => {
  const lost = parsed.filter((p) => p.kind === 'lost');
  assert.deepEqual(lost, [{ kind: 'lost', count: 17 }, { kind: 'lost', count: 3 }]);
});

test('malformed lines are errors, not events and not crashes', () => {
  const errors = parsed.filter((p) => p.kind === 'error');
  assert.equal(errors.length, 2);
  assert.match((errors[0] as { message: string }).message, /malformed event line/);
});

test('a filename with spaces and tabs survives', () => {
  const e = events.find((x) => x.type === 'exec' && x.comm === 'my prog');
  assert.ok(e && e.type === 'exec');
  assert.equal(e.filename, '/tmp/dir with\ttab/x');
});

test('other bpftrace message types are ignored', () => {
  assert.equal(parseLine('{"type": "time", "data": "12:00:00\\n"}', clock).kind, 'ignored');
  assert.equal(parseLine('', clock).kind, 'ignored');
});

test('the generated script filters every probe on the subject, except the byte counts (host-wide, all but the daemon)', () => {
  const s = generateScript({ kind: 'cgroup', path: '/sys/fs/cgroup/unified/redline/t1' }, { selfPid: 4242 });
  const probes = s.split('\n').filter((l) => l.startsWith('tracepoint:'));
  const subject = /\(cgroup == cgroupid\("\/sys\/fs\/cgroup\/unified\/redline\/t1"\) \|\| @subj\[pid\]\)/;
  let hostWide = 0;
  for (const p of probes) {
    // syscall exits only report what a filtered entry recorded for that thread
    if (/sys_exit_(open|creat)/.test(p)) assert.match(p, /\/@oflags\[tid\]\//);
    else if (/sys_exit_listen/.test(p)) assert.match(p, /\/@lfd\[tid\]\//);
    else if (/sys_exit_bind/.test(p)) assert.match(p, /\/@bfd\[tid\]\//);
    else if (/sys_exit_(kill|tkill|tgkill|pidfd_send_signal) |sched_process_exit \/@sgn/.test(p)) assert.match(p, /\/@sgn\[tid\]\//);
    else if (/sys_exit_(reboot|kexec_load|kexec_file_load) |sched_process_exit \/@btn/.test(p)) assert.match(p, /\/@btn\[tid\]\//);
    // removals, renames, truncations and mode changes: the exit prints what the entry kept
    else if (/sys_exit_(unlink|unlinkat|rmdir|rename|renameat|renameat2|truncate|ftruncate|chmod|fchmod|fchmodat2?|chown|lchown|fchown|fchownat) /.test(p)) assert.match(p, /\/@dk\[tid\]\//);
    // the daemon's ping: its own kill(itself, 0), nothing of the subject's
    else if (/sys_enter_kill \/pid == 4242 /.test(p)) assert.match(p, /args->pid == 4242 && args->sig == 0\//);
    else if (/sys_exit_(read|pread64|readv|preadv2?|write|pwrite64|writev|pwritev2?|sendto|sendmsg|sendfile64|splice|copy_file_range|mmap) /.test(p)) assert.match(p, /\/(@rf\[tid\]|@wf\[tid\]|@rf\[tid\] \|\| @wf\[tid\]|@mf\[tid\])\//);
    else if (/sys_enter_(read|write|sendfile64|splice|copy_file_range|mmap)|io_uring_complete/.test(p)) {
      assert.match(p, /pid != 4242/);
      hostWide++;
    } else assert.match(p, subject, p);
  }
  // read, write, the three movers, mmap (their entries) and io_uring's completions are the only probes not on the subject
  assert.equal(hostWide, 7);
  // every byte-count line has the fields the parser reads: Y and twelve more, the comm last
  const lines = s.split('\n').filter((l) => l.includes('printf("Y'));
  assert.ok(lines.length >= 10);
  for (const l of lines) assert.equal((/printf\("([^"]*)"/.exec(l)?.[1] ?? '').split('\\t').length, 13, l);
  // a subject's children are followed in the kernel: set at fork and exec, dropped at exit
  assert.match(s, /task_newtask[^{]*\{\n {2}@subj\[args->pid\] = 1;/);
  assert.match(s, /sched_process_exit[^{]*\{\n {2}delete\(@subj\[pid\]\);/);
  assert.match(generateScript({ kind: 'uid', uid: 1000 }), /uid == 1000/);
  assert.throws(() => generateScript({ kind: 'cgroup', path: '/x"); system("rm' }), /not usable/);
});

test('byte counts: the op, the fd (writes), the bytes, the file and whether the kernel counted a subject', () => {
  // captured: head reading 3 MB of a 4 MiB file, in steps of an eighth
  const r = parseLine('{"type": "printf", "data": "Y\\t11205401393216\\t12449\\t12449\\tread\\t3\\t532480\\t2146567\\t266338304\\t4194424\\t0\\t0\\thead\\n"}', clock);
  assert.deepEqual(r, { kind: 'event', event: { type: 'file_bytes', time: 11205401.393216, pid: 12449, tid: 12449, op: 'read', write: false, fd: 3, bytes: 532480, ino: 2146567, dev: 65024, size: 4194424, subject: false, socket: false, pipe: false, comm: 'head' } });
  // cp's copy_file_range: both sides from one syscall, the written side named apart
  const src = parseLine('{"type": "printf", "data": "Y\\t1\\t5\\t5\\tcopy_file_range\\t3\\t4194424\\t2146567\\t266338304\\t4194424\\t1\\t0\\tcp\\n"}', clock);
  const dst = parseLine('{"type": "printf", "data": "Y\\t1\\t5\\t5\\tcopy_file_range_write\\t4\\t4194424\\t2146375\\t266338304\\t4194424\\t1\\t0\\tcp\\n"}', clock);
  assert.ok(src.kind === 'event' && src.event.type === 'file_bytes' && !src.event.write && src.event.subject);
  assert.ok(dst.kind === 'event' && dst.event.type === 'file_bytes' && dst.event.write && dst.event.fd === 4);
  const map = parseLine('{"type": "printf", "data": "Y\\t1\\t5\\t5\\tmmap_write\\t3\\t1048576\\t9\\t266338304\\t1048576\\t1\\t0\\tpython3\\n"}', clock);
  assert.ok(map.kind === 'event' && map.event.type === 'file_bytes' && map.event.write);
  assert.equal(parseLine('{"type": "printf", "data": "Y\\t1\\t5\\t5\\tpeek\\t3\\t1\\t9\\t2\\t1\\t1\\tx\\n"}', clock).kind, 'error');
  assert.equal(parseLine('{"type": "printf", "data": "Y\\t1\\t5\\t5\\tread\\t3\\t1\\t9\\t2\\t1\\tmaybe\\t0\\tx\\n"}', clock).kind, 'error');
  // bytes sent on a socket (send() is sendto)
  const sent = parseLine('{"type": "printf", "data": "Y\\t1\\t5\\t5\\tsendto\\t7\\t1048576\\t88\\t8\\t0\\t1\\t1\\tcurl\\n"}', clock);
  assert.ok(sent.kind === 'event' && sent.event.type === 'file_bytes' && sent.event.write && sent.event.socket);
  // bytes into a pipe (kind 2): tar passing the weights on to gzip
  const piped = parseLine('{"type": "printf", "data": "Y\\t1\\t5\\t5\\twrite\\t1\\t1048576\\t4242\\t13\\t0\\t1\\t2\\ttar\\n"}', clock);
  assert.ok(piped.kind === 'event' && piped.event.type === 'file_bytes' && piped.event.pipe && !piped.event.socket);
  assert.equal(parseLine('{"type": "printf", "data": "Y\\t1\\t5\\t5\\twrite\\t1\\t1048576\\t4242\\t13\\t0\\t1\\t3\\ttar\\n"}', clock).kind, 'error');
  // captured: io_uring completions carry no fd; the write completed in the io-wq worker
  const ur = parseLine('{"type": "printf", "data": "Y\\t23835859419511\\t31415\\t31415\\turing_read\\t-1\\t8388608\\t2146395\\t266338304\\t67108864\\t0\\t0\\turing_io\\n"}', clock);
  assert.ok(ur.kind === 'event' && ur.event.type === 'file_bytes' && !ur.event.write && ur.event.fd === -1 && ur.event.op === 'uring_read');
  const uw = parseLine('{"type": "printf", "data": "Y\\t23835844405337\\t31415\\t31416\\turing_write\\t-1\\t1048576\\t2146350\\t266338304\\t1048576\\t0\\t0\\tiou-wrk-31415\\n"}', clock);
  assert.ok(uw.kind === 'event' && uw.event.type === 'file_bytes' && uw.event.write && uw.event.pid === 31415 && uw.event.tid === 31416);
});

test('the libbpf loader\'s plain lines: ready, lost records, and the same byte lines as bpftrace\'s', () => {
  assert.deepEqual(parseLoaderLine('REDLINE-READY', clock), { kind: 'ready' });
  assert.deepEqual(parseLoaderLine('Lost 12 events', clock), { kind: 'lost', count: 12 });
  // the echo of the daemon's kill(itself, 0)
  assert.deepEqual(parseLoaderLine('P\t3000000\t42\t42', clock), { kind: 'pong', time: 3 });
  // captured from the loader: cp's copy_file_range, both sides
  const src = parseLoaderLine('Y\t788293598171\t6409\t6409\tcopy_file_range\t3\t41943040\t2146564\t266338304\t41943040\t1\t0\tcp', clock);
  assert.deepEqual(src, { kind: 'event', event: { type: 'file_bytes', time: 788293.598171, pid: 6409, tid: 6409, op: 'copy_file_range', write: false, fd: 3, bytes: 41943040, ino: 2146564, dev: 65024, size: 41943040, subject: true, socket: false, pipe: false, comm: 'cp' } });
  const map = parseLoaderLine('Y\t788268462490\t6368\t6368\tmmap_write\t5\t8388608\t2146502\t266338304\t8388608\t1\t0\tpython3', clock);
  assert.ok(map.kind === 'event' && map.event.type === 'file_bytes' && map.event.write);
  assert.equal(parseLoaderLine('Y\t1\t5\t5\tpeek\t3\t1\t9\t2\t1\t1\t0\tx', clock).kind, 'error');
  assert.equal(parseLoaderLine('libbpf: something went wrong', clock).kind, 'error');
});

test('with the loader counting, bpftrace keeps io_uring and drops every syscall byte probe', () => {
  const full = generateScript({ kind: 'uid', uid: 1000 }, { selfPid: 77 });
  const lean = generateScript({ kind: 'uid', uid: 1000 }, { selfPid: 77, syscallBytes: false });
  for (const sys of ['read', 'pread64', 'readv', 'write', 'writev', 'sendto', 'sendmsg', 'sendfile64', 'splice', 'copy_file_range', 'mmap']) {
    assert.match(full, new RegExp(`sys_exit_${sys}\\b`));
    assert.doesNotMatch(lean, new RegExp(`sys_(enter|exit)_${sys}\\b`));
  }
  assert.match(lean, /io_uring_complete/);
  // no map of the dropped probes is named (bpftrace refuses a clear() of an unknown map)
  assert.doesNotMatch(lean, /@rf\b|@wf\b|@mb\b/);
  assert.ok(lean.split('\n').length < full.split('\n').length / 1.5);
});

test('the program counts io_uring completions by the request\'s opcode and file', () => {
  const src = generateScript({ kind: 'uid', uid: 1000 }, { selfPid: 77 });
  assert.match(src, /tracepoint:io_uring:io_uring_complete \/pid != 77 && args->res > 0\//);
  // READ (22) counts as a read, WRITE (23) as a write
  assert.match(src, /\$op == 22[^\n]*i_size >= /);
  assert.match(src, /\$op == 23/);
});

test('opens carry fd, flags, whether they created the file, and the name; write flags are recognised', () => {
  const rd = parseLine('{"type": "printf", "data": "O\\t3722035215448\\t29968\\t29968\\t3\\t0\\t-100\\t0\\tcat\\trl-o.txt\\n"}', clock);
  assert.deepEqual(rd, { kind: 'event', event: { type: 'open', time: 3722035.215448, pid: 29968, tid: 29968, fd: 3, flags: 0, dfd: -100, write: false, comm: 'cat', filename: 'rl-o.txt' } });
  const wr = parseLine('{"type": "printf", "data": "O\\t1\\t5\\t5\\t4\\t577\\t-100\\t1\\tsh\\t/tmp/out file\\n"}', clock);
  assert.ok(wr.kind === 'event' && wr.event.type === 'open' && wr.event.write && wr.event.filename === '/tmp/out file');
  // the open made the file (FMODE_CREATED): a new file, not an overwrite
  assert.equal(wr.event.created, true);
  assert.equal(rd.kind === 'event' && rd.event.type === 'open' && rd.event.created, undefined);
  // O_RDONLY|O_CLOEXEC is a read
  const ro = parseLine('{"type": "printf", "data": "O\\t1\\t5\\t5\\t4\\t524288\\t-100\\t0\\tsh\\t/etc/x\\n"}', clock);
  assert.ok(ro.kind === 'event' && ro.event.type === 'open' && !ro.event.write);
});

test('hard and symbolic links carry the new name', () => {
  const l = parseLine('{"type": "printf", "data": "L\\t3722039929073\\t29969\\t29969\\thard\\t-100\\tln\\trl-o2.txt\\n"}', clock);
  assert.deepEqual(l, { kind: 'event', event: { type: 'link', time: 3722039.929073, pid: 29969, tid: 29969, kind: 'hard', dfd: -100, comm: 'ln', filename: 'rl-o2.txt' } });
  assert.equal(parseLine('{"type": "printf", "data": "L\\t1\\t2\\t2\\tweird\\t-100\\tln\\tx\\n"}', clock).kind, 'error');
});

test('listen and connect lines (captured from the generated program)', () => {
  // the socket's family, protocol, port, inode and address are read in the kernel
  const n = parseLine('{"type": "printf", "data": "N\\t12719671025449\\t15909\\t15909\\t3\\t4\\t6\\t45745\\t504217\\t127.0.0.1\\tpython3\\n"}', clock);
  assert.deepEqual(n, { kind: 'event', event: { type: 'listen', time: 12719671.025449, pid: 15909, tid: 15909, fd: 3, seen_by: 'listen', proto: 'tcp', addr: '127.0.0.1', port: 45745, inode: 504217, loopback: true, comm: 'python3' } });
  const n6 = parseLine('{"type": "printf", "data": "N\\t12719671090312\\t15909\\t15909\\t4\\t6\\t6\\t46127\\t504218\\t::\\tpython3\\n"}', clock);
  assert.deepEqual(n6, { kind: 'event', event: { type: 'listen', time: 12719671.090312, pid: 15909, tid: 15909, fd: 4, seen_by: 'listen', proto: 'tcp6', addr: '::', port: 46127, inode: 504218, loopback: false, comm: 'python3' } });
  // a UDP server's bind: told apart by seen_by
  const b = parseLine('{"type": "printf", "data": "B\\t12719671108516\\t15909\\t15909\\t5\\t4\\t17\\t38687\\t504219\\t0.0.0.0\\tpython3\\n"}', clock);
  assert.deepEqual(b, { kind: 'event', event: { type: 'listen', time: 12719671.108516, pid: 15909, tid: 15909, fd: 5, seen_by: 'bind', proto: 'udp', addr: '0.0.0.0', port: 38687, inode: 504219, loopback: false, comm: 'python3' } });
  // an unknown protocol number is a malformed line, not a guess
  assert.equal(parseLine('{"type": "printf", "data": "N\\t1\\t2\\t2\\t3\\t4\\t132\\t80\\t9\\t0.0.0.0\\tx\\n"}', clock).kind, 'error');
  const c4 = parseLine('{"type": "printf", "data": "C\\t6970701992051\\t31310\\t31310\\t4\\t4\\t38133\\t127.0.0.1\\tpython3\\n"}', clock);
  assert.deepEqual(c4, { kind: 'event', event: { type: 'connect', time: 6970701.992051, pid: 31310, tid: 31310, fd: 4, family: 4, port: 38133, addr: '127.0.0.1', loopback: true, comm: 'python3' } });
  const c6 = parseLine('{"type": "printf", "data": "C\\t1\\t2\\t2\\t5\\t6\\t443\\t2001:db8::1\\tcurl\\n"}', clock);
  assert.ok(c6.kind === 'event' && c6.event.type === 'connect' && c6.event.family === 6 && !c6.event.loopback);
  assert.equal(parseLine('{"type": "printf", "data": "C\\t1\\t2\\t2\\t5\\t9\\t443\\tx\\tcurl\\n"}', clock).kind, 'error');
});

test('the BEGIN marker says every probe is attached (attached_probes comes before the attaching)', () => {
  assert.deepEqual(parseLine('{"type": "printf", "data": "REDLINE-READY\\n"}', clock), { kind: 'ready' });
  assert.match(generateScript({ kind: 'uid', uid: 0 }), /^BEGIN \{ printf\("REDLINE-READY\\n"\); \}/);
});

test('read-only opens of small files are dropped in the kernel unless a rule asks for them', () => {
  const exitOf = (src: string) => src.slice(src.indexOf('tracepoint:syscalls:sys_exit_openat'), src.indexOf('tracepoint:syscalls:sys_enter_open '));
  const filtered = exitOf(generateScript({ kind: 'uid', uid: 1000 }, { selfPid: 7 }));
  // writes (O_WRONLY/O_RDWR, O_CREAT/O_TRUNC) always; reads only of regular files of 1 MiB or more
  assert.match(filtered, /\$print = \(\(@oflags\[tid\] - 1\) & 3\) != 0 \|\| \(\(@oflags\[tid\] - 1\) & 0x240\) != 0;/);
  assert.match(filtered, /0x8000 && \(\$f->f_inode->i_mode & 0x49\) == 0 && \$f->f_inode->i_size >= 1048576\) \{ \$print = 1; \}/);
  const all = exitOf(generateScript({ kind: 'uid', uid: 1000 }, { selfPid: 7, allOpens: true }));
  assert.match(all, /if \(\$ret >= 0\) \{ \$print = 1; \}/);
  assert.doesNotMatch(all, /i_size/);
});

test('the argv line: read in the kernel, NULs and bytes outside ASCII escaped; cut or unclear ones are left to /proc', () => {
  // captured: setsid /usr/bin/true "a b" é
  const a = parseLine('{"type": "printf", "data": "A\\t28347878345760\\t10475\\t10475\\t37\\t/usr/bin/setsid\\\\x00/usr/bin/true\\\\x00a b\\\\x00\\\\xc3\\\\xa9\\\\x00\\n"}', clock);
  assert.deepEqual(a, { kind: 'argv', tid: 10475, time: 28347878.34576, args: ['/usr/bin/setsid', '/usr/bin/true', 'a b', 'é'] });
  // captured: an argument holding a literal \x41 decodes short of the kernel's length: unclear
  const lit = parseLine('{"type": "printf", "data": "A\\t1\\t5\\t5\\t34\\t/tmp/dir with\\\\x09tab/x\\\\x00--flag\\\\x00x\\\\x41y\\\\x00\\n"}', clock);
  assert.deepEqual(lit.kind === 'argv' && lit.args, null);
  // longer than the kernel reads: cut, so null
  assert.equal(argvOf('a\\x00', 500), null);
  assert.deepEqual(argvOf('a\\x00bc\\x00', 5), ['a', 'bc']);
  // unreadable memory comes back as zeros
  assert.equal(argvOf('\\x00\\x00', 2), null);
});
