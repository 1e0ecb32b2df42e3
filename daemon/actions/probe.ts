// The active probe: does a replica's new port answer like an inference API? Loopback only,
// a short timeout, and a few paths (OpenAI-style /v1/models, /health, /). Never throws.
// A port in another network namespace (a container's) is probed from inside that namespace:
// a short-lived node process started under nsenter does the requests.
import { execFile } from 'node:child_process';
import { request } from 'node:http';

export interface ProbeAnswer {
  path: string;
  status: number | null;
  /** the first bytes of the body, for the log */
  excerpt: string;
  /** the answer looks like an inference server's */
  inference: boolean;
  error?: string;
  latency_ms: number;
}

interface RawAnswer {
  path: string;
  status: number | null;
  body: string;
  error?: string;
  latency_ms: number;
}

export const PROBE_PATHS = ['/v1/models', '/health', '/'];
const MAX_BODY = 4096;

export function looksLikeInference(path: string, status: number, body: string): boolean {
  if (status < 200 || status >= 300) return false;
  if (path === '/v1/models') return /"object"\s*:\s*"list"|"data"\s*:\s*\[/.test(body);
  return /"model|"models"|vllm|llama|text-generation|inference|"generated_text"/i.test(body);
}

function classify(r: RawAnswer): ProbeAnswer {
  const a: ProbeAnswer = { path: r.path, status: r.status, excerpt: r.body.slice(0, 200), inference: looksLikeInference(r.path, r.status ?? 0, r.body), latency_ms: r.latency_ms };
  if (r.error !== undefined) a.error = r.error;
  return a;
}

function get(port: number, path: string, timeoutMs: number): Promise<RawAnswer> {
  const t0 = performance.now();
  const done = (a: Omit<RawAnswer, 'latency_ms' | 'path'>): RawAnswer => ({ path, ...a, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 });
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'redline-probe' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < MAX_BODY) body += c;
        if (body.length >= MAX_BODY) res.destroy();
      });
      const finish = () => resolve(done({ status: res.statusCode ?? null, body }));
      res.on('end', finish);
      res.on('close', finish);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve(done({ status: null, body: '', error: err.message })));
    req.end();
  });
}

/** asks each path in turn; stops at the first answer that looks like an inference API */
export async function probe(port: number, timeoutMs = 500): Promise<ProbeAnswer[]> {
  const out: ProbeAnswer[] = [];
  for (const path of PROBE_PATHS) {
    const a = classify(await get(port, path, timeoutMs));
    out.push(a);
    if (a.inference || a.error) break;
  }
  return out;
}

// what runs inside the other namespace: the same requests, one JSON line per answer
const IN_NETNS = `
const http = require('node:http');
const [port, timeout, ...paths] = process.argv.slice(1);
(async () => {
  for (const path of paths) {
    const t0 = performance.now();
    const a = await new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: Number(port), path, timeout: Number(timeout), headers: { 'user-agent': 'redline-probe' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { if (body.length < ${MAX_BODY}) body += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? null, body }));
      });
      req.on('timeout', () => req.destroy(new Error('no answer within ' + timeout + ' ms')));
      req.on('error', (e) => resolve({ status: null, body: '', error: e.message }));
      req.end();
    });
    process.stdout.write(JSON.stringify({ path, ...a, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 }) + '\\n');
    if (a.error) break;
  }
})();
`;

/** the same probe, from inside the network namespace process `pid` lives in */
export function probeInNetns(pid: number, port: number, timeoutMs = 500): Promise<ProbeAnswer[]> {
  const args = [`--net=/proc/${pid}/ns/net`, '--', process.execPath, '-e', IN_NETNS, String(port), String(timeoutMs), ...PROBE_PATHS];
  return new Promise((resolve) => {
    execFile('nsenter', args, { timeout: timeoutMs * PROBE_PATHS.length + 2000, maxBuffer: 1 << 20 }, (err, stdout) => {
      const out: ProbeAnswer[] = [];
      for (const line of stdout.split('\n')) {
        if (!line) continue;
        try {
          const a = classify(JSON.parse(line) as RawAnswer);
          out.push(a);
          if (a.inference) break;
        } catch {
          // a torn line: the rest says enough
        }
      }
      if (out.length === 0 && err) out.push({ path: PROBE_PATHS[0] as string, status: null, excerpt: '', inference: false, error: `could not probe inside the namespace: ${err.message.split('\n')[0]}`, latency_ms: 0 });
      resolve(out);
    });
  });
}
