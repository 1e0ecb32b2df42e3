// listen() (kernel time, from bpftrace) → alert written to the audit log. One subject process
// listens on LISTENS fresh loopback ports in turn (a new port each time, so de-duplication
// does not fold them): first as an ordinary process (network.listen), then as a replica that
// keeps the weights mapped (replica.listen: its listen also settles the weights check first).
// Prints JSON. Needs root and bpftrace.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execCommand } from '../daemon/commands/exec.js';
import type { AlertInfo } from '../daemon/pipeline.js';
import { Pipeline } from '../daemon/pipeline.js';
import { makeModel } from '../tests/helpers/model.js';
import { summary } from './stats.js';

const LISTENS = Number(process.env.LISTENS ?? 250);
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const model = makeModel(join(dir, 'model'), 4);
const listener = join(dir, 'listen.py');
// argv[1]: a weights file to keep mapped first ("-": none); the sockets stay open to the end
writeFileSync(
  listener,
  [
    'import mmap, socket, sys, time',
    'keep = []',
    'if sys.argv[1] != "-":',
    '    f = open(sys.argv[1], "rb"); keep.append(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))',
    `for i in range(${LISTENS}):`,
    '    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); keep.append(s)',
    '    time.sleep(0.004)',
  ].join('\n'),
);
const script = join(dir, 'agent.sh');
writeFileSync(script, `#!/bin/sh\npython3 ${listener} -\ncp -r ${model.dir} ${join(dir, 'copy')}\npython3 ${listener} ${join(dir, 'copy', 'model.safetensors')}\n`);
chmodSync(script, 0o755);

const byCategory: Record<string, number[]> = { 'network.listen': [], 'replica.listen': [] };
const orig = Pipeline.prototype.emit;
Pipeline.prototype.emit = function (this: Pipeline, name: string | symbol, ...args: unknown[]) {
  const a = args[0] as AlertInfo | undefined;
  // the warm-up pipeline's synthetic alerts (pids beyond pid_max) are not measurements
  if (name === 'alert' && a?.on_disk_ms !== undefined && a.pid < 4_194_304) byCategory[a.category]?.push(a.on_disk_ms);
  return orig.call(this, name, ...args);
};

try {
  const res = await execCommand([script], { mode: 'observe', weights: [model.dir], log: join(dir, 'bench.ndjson'), quiet: true });
  for (const [category, values] of Object.entries(byCategory)) {
    console.log(JSON.stringify({ bench: 'listen-to-alert-on-disk', category, unit: 'ms', listens: LISTENS, exit: res.code, ...summary(values) }));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
