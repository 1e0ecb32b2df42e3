// How much of the weights is on disk when the copy alert lands: a copy throttled to
// 200 MB/s, a derived (XORed) copy at the same pace, and a plain `cp`, of a 1 GiB weight file; whether the alert beats `cp`'s exit;
// and the daemon's CPU while the copy is watched. Observe mode, so the copies run to the
// end. Prints JSON. Needs root, bpftrace and cgroup v2.
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execCommand } from '../daemon/commands/exec.js';
import { type AlertInfo, Pipeline } from '../daemon/pipeline.js';

const GIB = 1 << 30;
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-copy-'));
// the weights sit in a folder of their own (watched by chokidar); copies go elsewhere
mkdirSync(join(dir, 'model'));
mkdirSync(join(dir, 'out'));
const weights = join(dir, 'model', 'model.safetensors');
const header = Buffer.from('{"w":{"dtype":"F16","shape":[536870912],"data_offsets":[0,1073741824]}}');
const fd = openSync(weights, 'w');
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(header.length));
writeSync(fd, len);
writeSync(fd, header);
const chunk = randomBytes(1 << 20);
for (let i = 0; i < 1024; i++) {
  chunk.writeUInt32LE(i, 0); // every MiB differs
  writeSync(fd, chunk);
}
closeSync(fd);

let onAlert: ((a: AlertInfo) => void) | null = null;
const orig = Pipeline.prototype.emit;
Pipeline.prototype.emit = function (this: Pipeline, name: string | symbol, ...args: unknown[]) {
  const a = args[0] as AlertInfo | undefined;
  if (name === 'alert' && a?.category === 'weights.copy' && a.pid < 4_194_304) onAlert?.(a);
  return orig.call(this, name, ...args);
};

async function trial(name: string, lines: string[], dest: string) {
  const script = join(dir, `${name}.sh`);
  writeFileSync(script, ['#!/bin/sh', ...lines, `date +%s%3N > ${join(dir, `${name}.done`)}`, 'sleep 3'].join('\n'));
  chmodSync(script, 0o755);
  let atAlert: { bytes: number; time: number } | null = null;
  onAlert = () => {
    if (!atAlert) atAlert = { bytes: statSync(dest).size, time: Date.now() };
  };
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  await execCommand([script], { mode: 'observe', weights: [weights], log: join(dir, `${name}.ndjson`), quiet: true });
  const cpu = process.cpuUsage(cpu0);
  const done = Number(readFileSync(join(dir, `${name}.done`), 'utf8'));
  const a = atAlert as { bytes: number; time: number } | null;
  return {
    copy: name,
    alerted: a !== null,
    mib_on_disk_at_alert: a ? Math.round((a.bytes / (1 << 20)) * 10) / 10 : null,
    alert_before_copy_done: a ? a.time <= done : null,
    copy_ms: done - t0,
    daemon_cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
  };
}

try {
  const results = [];
  const throttled = join(dir, 'out', 'throttled.bin');
  results.push(
    await trial(
      'throttled-200MBps',
      [`python3 - <<'PY'`, 'import time', `s = open(${JSON.stringify(weights)}, "rb"); d = open(${JSON.stringify(throttled)}, "wb")`, 't0 = time.time(); n = 0', 'while True:', '    b = s.read(1 << 20)', '    if not b: break', '    d.write(b); d.flush(); n += len(b)', '    lag = n / 200e6 - (time.time() - t0)', '    if lag > 0: time.sleep(lag)', 'PY'],
      throttled,
    ),
  );
  // a derived copy: every byte XORed on the way (nothing in it matches by content), same pace;
  // flagged as a derived copy in progress once 16 MiB of the weights were read and as much written
  // (the libbpf loader; with bpftrace counting, once half was read, then 1.5 s to rule out a match)
  const derived = join(dir, 'out', 'derived.bin');
  results.push(
    await trial(
      'derived-xor-200MBps',
      [`python3 - <<'PY'`, 'import time', 't = bytes(i ^ 0x5A for i in range(256))', `s = open(${JSON.stringify(weights)}, "rb"); d = open(${JSON.stringify(derived)}, "wb")`, 't0 = time.time(); n = 0', 'while True:', '    b = s.read(1 << 20)', '    if not b: break', '    d.write(b.translate(t)); d.flush(); n += len(b)', '    lag = n / 200e6 - (time.time() - t0)', '    if lag > 0: time.sleep(lag)', 'PY'],
      derived,
    ),
  );
  // the same trial with no copy: what the daemon spends anyway (start-up, bpftrace, teardown)
  results.push(await trial('no-copy', ['sleep 3.5'], weights));
  const plain = join(dir, 'out', 'plain.bin');
  results.push(await trial('cp', [`cp ${weights} ${plain}`], plain));
  console.log(JSON.stringify({ bench: 'copy-alert', weights_mib: GIB / (1 << 20), results }));
} finally {
  rmSync(dir, { recursive: true, force: true });
  execFileSync('sync');
}
