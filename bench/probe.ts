// The serving probe's cost, per listener: the GETs that tell an inference API (/v1/models,
// /health, /), and the canary completion asked of one that is (its answer compared with the
// original's), from the daemon's own network namespace and from inside another (a short-lived
// node under nsenter). Also an ordinary web server (python3 -m http.server), which is asked
// all three GETs at each of the three tries. Prints wall time and the daemon's CPU per probe,
// and the requests each listener costs. Needs root for the namespace.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askCanary, compareCanary, PROBE_PATHS, probe, type Target } from '../daemon/sensors/ports/ask.js';
import { summary } from './stats.js';

const PROBES = Number(process.env.PROBES ?? 200);
const NETNS_PROBES = Number(process.env.NETNS_PROBES ?? 20);
const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'redline-bench-'));
const weights = join(dir, 'w.bin');
writeFileSync(weights, Buffer.alloc(1 << 20, 1));

async function server(wrap: string[], name: string, cmd: string[] = ['python3', join(ROOT, 'tests/fixtures/fake_server.py'), '--weights', weights, '--lifetime', '600']): Promise<{ pid: number; port: number; stop: () => void }> {
  const portFile = join(dir, `${name}.port`);
  const argv = [...wrap, ...cmd, '--port-file', portFile];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore' });
  for (let i = 0; i < 400 && !existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 10));
  return { pid: child.pid as number, port: Number(readFileSync(portFile, 'utf8')), stop: () => child.kill('SIGKILL') };
}

async function measure(n: number, once: () => Promise<boolean>) {
  const wall: number[] = [];
  let ok = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    if (await once()) ok++;
    wall.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  return { ok, cpu_ms_per_probe: Math.round(((cpu.user + cpu.system) / 1000 / n) * 1000) / 1000, ...summary(wall) };
}

const servers: { stop: () => void }[] = [];
const line = (o: object) => console.log(JSON.stringify({ bench: 'probe', unit: 'ms', ...o }));
try {
  const original = await server([], 'original');
  const replica = await server([], 'replica');
  servers.push(original, replica);
  const at = (p: number): Target => ({ port: p });
  const reference = (await askCanary(at(original.port), 'fake-model')).text;
  line({ what: 'GETs until one answers like an inference API', where: 'same namespace', requests: 1, probes: PROBES, ...(await measure(PROBES, async () => (await probe(at(replica.port))).some((a) => a.inference))) });
  line({ what: 'canary completion, compared with the original', where: 'same namespace', requests: 1, probes: PROBES, ...(await measure(PROBES, async () => compareCanary((await askCanary(at(replica.port), 'fake-model')).text, reference) === 'same')) });
  // a listener that is no inference API: every GET, at each of the three tries
  const web = await server([], 'web', ['python3', '-c', 'import http.server,sys,socketserver\ns=http.server.ThreadingHTTPServer(("127.0.0.1",0),http.server.SimpleHTTPRequestHandler)\nopen(sys.argv[2],"w").write(str(s.server_address[1]))\ns.serve_forever()']);
  servers.push(web);
  line({ what: 'GETs of an ordinary web server (one try)', where: 'same namespace', requests: PROBE_PATHS.length, tries: 3, probes: PROBES, ...(await measure(PROBES, async () => !(await probe(at(web.port))).some((a) => a.inference))) });
  if (process.getuid?.() === 0) {
    const inNs = await server(['unshare', '-n', 'sh', '-c', 'ip link set lo up; exec "$@"', 'sh'], 'netns');
    servers.push(inNs);
    // unshare execs sh, which execs python: the pid is the server's
    const t: Target = { port: inNs.port, netnsPid: inNs.pid };
    line({ what: 'GETs until one answers like an inference API', where: 'other namespace (nsenter)', requests: 1, probes: NETNS_PROBES, ...(await measure(NETNS_PROBES, async () => (await probe(t)).some((a) => a.inference))) });
    line({ what: 'canary completion, compared with the original', where: 'other namespace (nsenter)', requests: 1, probes: NETNS_PROBES, ...(await measure(NETNS_PROBES, async () => compareCanary((await askCanary(t, 'fake-model')).text, reference) === 'same')) });
  }
} finally {
  for (const s of servers) s.stop();
  rmSync(dir, { recursive: true, force: true });
}
