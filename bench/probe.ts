// The serving probe's cost: one probe of a replica that answers /v1/models at once, from the
// daemon's own network namespace and from inside another (a short-lived node under nsenter).
// Prints wall time per probe and the daemon's CPU per probe. Needs root for the namespace.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probe, probeInNetns } from '../daemon/actions/probe.js';
import { replicaServer } from '../tests/helpers/servers.js';
import { summary } from './stats.js';

const PROBES = Number(process.env.PROBES ?? 200);
const NETNS_PROBES = Number(process.env.NETNS_PROBES ?? 20);
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const weights = join(dir, 'w.bin');
writeFileSync(weights, Buffer.alloc(1 << 20, 1));
writeFileSync(join(dir, 'server.py'), replicaServer);

async function server(wrap: string[], name: string): Promise<{ pid: number; port: number; stop: () => void }> {
  const portFile = join(dir, `${name}.port`);
  const cmd = [...wrap, 'python3', join(dir, 'server.py'), weights, portFile, '600'];
  const child = spawn(cmd[0] as string, cmd.slice(1), { stdio: 'ignore' });
  for (let i = 0; i < 400 && !existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 10));
  return { pid: child.pid as number, port: Number(readFileSync(portFile, 'utf8')), stop: () => child.kill('SIGKILL') };
}

async function measure(n: number, once: () => Promise<{ inference: boolean }[]>) {
  const wall: number[] = [];
  let answered = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const a = await once();
    wall.push(performance.now() - t0);
    if (a.some((x) => x.inference)) answered++;
  }
  const cpu = process.cpuUsage(cpu0);
  return { answered, cpu_ms_per_probe: Math.round(((cpu.user + cpu.system) / 1000 / n) * 1000) / 1000, ...summary(wall) };
}

const servers: { stop: () => void }[] = [];
try {
  const local = await server([], 'local');
  servers.push(local);
  console.log(JSON.stringify({ bench: 'probe', where: 'same namespace', unit: 'ms', probes: PROBES, ...(await measure(PROBES, () => probe(local.port))) }));
  if (process.getuid?.() === 0) {
    const inNs = await server(['unshare', '-n', 'sh', '-c', 'ip link set lo up; exec "$@"', 'sh'], 'netns');
    servers.push(inNs);
    // unshare execs sh, which execs python: the pid is the server's
    console.log(JSON.stringify({ bench: 'probe', where: 'other namespace (nsenter)', unit: 'ms', probes: NETNS_PROBES, ...(await measure(NETNS_PROBES, () => probeInNetns(inNs.pid, inNs.port))) }));
  }
} finally {
  for (const s of servers) s.stop();
  rmSync(dir, { recursive: true, force: true });
}
