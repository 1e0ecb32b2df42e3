// How long the eBPF sensor takes to start: bpftrace compiling and attaching the generated
// program, from spawn to the BEGIN marker (every probe attached). Every `redline exec` trial
// waits this long before its subject starts. Prints JSON. Needs root and bpftrace.
import { EbpfSensor } from '../daemon/sensors/ebpf/index.js';
import { summary } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 3);
const ms: number[] = [];
let probes = 0;
for (let i = 0; i < RUNS; i++) {
  // a uid nobody runs as: the subject filter matches nothing, the host-wide probes all attach
  const sensor = new EbpfSensor({ filter: { kind: 'uid', uid: 65_533 } });
  probes = sensor.scriptText().split('\n').filter((l) => /^(tracepoint|interval):/.test(l)).reduce((n, l) => n + l.split(',').length, 0);
  const t0 = performance.now();
  await sensor.start();
  ms.push(performance.now() - t0);
  await sensor.stop();
}
console.log(JSON.stringify({ bench: 'ebpf-startup', unit: 'ms', attach_points: probes, ...summary(ms) }));
