// The active probe: does a replica's new port answer like an inference API? Loopback only,
// a short timeout, and a few paths (OpenAI-style /v1/models, /health, /). Never throws.
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

const PATHS = ['/v1/models', '/health', '/'];
const MAX_BODY = 4096;

function looksLikeInference(path: string, status: number, body: string): boolean {
  if (status < 200 || status >= 300) return false;
  if (path === '/v1/models') return /"object"\s*:\s*"list"|"data"\s*:\s*\[/.test(body);
  return /"model|"models"|vllm|llama|text-generation|inference|"generated_text"/i.test(body);
}

function get(port: number, path: string, timeoutMs: number): Promise<ProbeAnswer> {
  const t0 = performance.now();
  const done = (a: Omit<ProbeAnswer, 'latency_ms' | 'path'>): ProbeAnswer => ({ path, ...a, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 });
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'redline-probe' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < MAX_BODY) body += c;
        if (body.length >= MAX_BODY) res.destroy();
      });
      const finish = () => resolve(done({ status: res.statusCode ?? null, excerpt: body.slice(0, 200), inference: looksLikeInference(path, res.statusCode ?? 0, body) }));
      res.on('end', finish);
      res.on('close', finish);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve(done({ status: null, excerpt: '', inference: false, error: err.message })));
    req.end();
  });
}

/** asks each path in turn; stops at the first answer that looks like an inference API */
export async function probe(port: number, timeoutMs = 500): Promise<ProbeAnswer[]> {
  const out: ProbeAnswer[] = [];
  for (const path of PATHS) {
    const a = await get(port, path, timeoutMs);
    out.push(a);
    if (a.inference || a.error) break;
  }
  return out;
}
