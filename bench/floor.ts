// The floor under a redline latency figure: a bare bpftrace program on one tracepoint, filtered
// on a cgroup, read by this process. Kernel time → line read here: what delivery costs with no
// redline in between.
import { spawn } from 'node:child_process';
import { monotonicToEpoch, nowMs } from '../daemon/clock.js';

/** starts bpftrace on `tracepoint` for `group` (and `filter`, a bpftrace predicate) and resolves once it is attached; latencies (ms) fill in as lines arrive */
export async function bareTracer(tracepoint: string, group: string, filter = ''): Promise<{ latencies: number[]; stop: () => void }> {
  const toEpoch = monotonicToEpoch();
  const latencies: number[] = [];
  const program = `BEGIN { printf("ready\\n"); } tracepoint:${tracepoint} /cgroup == cgroupid("${group}")${filter ? ` && ${filter}` : ''}/ { printf("%llu\\n", nsecs); }`;
  // stderr ignored: bpftrace warns about RLIMIT_MEMLOCK here; a real failure ends it, which is reported
  const bt = spawn('bpftrace', ['-B', 'line', '-e', program], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((ready, fail) => {
    let buf = '';
    bt.stdout.setEncoding('utf8');
    bt.stdout.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') ready();
        else if (/^\d+$/.test(line)) latencies.push(nowMs() - toEpoch(BigInt(line)));
      }
    });
    bt.on('exit', (code) => fail(new Error(`bpftrace exited (${code})`)));
  });
  return { latencies, stop: () => bt.kill('SIGINT') };
}
