// The active probe: does a listener answer like an inference API, and like the protected model?
// Loopback only, short timeouts, a few requests: GETs of OpenAI-style /v1/models, /health and
// /, then (for one that answers like an inference API) one fixed canary completion, greedy and
// a few tokens long, that changes no state. The allowed original is asked the same canary, and
// the two answers compared. Never throws. A port in another network namespace (a container's)
// is probed from inside it: a short-lived node process started under nsenter does the requests.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';

export interface ProbeAnswer {
  path: string;
  status: number | null;
  /** the first bytes of the body, for the log */
  excerpt: string;
  /** the answer looks like an inference server's */
  inference: boolean;
  /** the first model a /v1/models answer names (the canary asks for it) */
  model?: string;
  error?: string;
  latency_ms: number;
}

/** one HTTP request the probe makes */
export interface Ask {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
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

/** the canary: a fixed prompt, greedy, a few tokens; the same model answers it the same way */
export const CANARY_PROMPT = 'The weights of this model were copied to';
export const CANARY_TOKENS = 4;
/** each canary request's timeout: a CPU engine busy with other requests takes seconds for a few tokens */
export const CANARY_TIMEOUT_MS = 10_000;

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/**
 * An inference API's answer: /v1/models lists models; /health and / must answer JSON that
 * names a model or an engine (a web page that merely links a file named "model" is not one).
 */
export function looksLikeInference(path: string, status: number, body: string): boolean {
  if (status < 200 || status >= 300) return false;
  if (path === '/v1/models') return /"object"\s*:\s*"list"|"data"\s*:\s*\[/.test(body);
  if (!/^\s*[{[]/.test(body)) return false;
  return /"model|"models"|vllm|llama|text-generation|inference|"generated_text"/i.test(body);
}

function modelOf(body: string): string | undefined {
  const j = parseJson(body) as { data?: { id?: unknown }[] } | undefined;
  const id = j?.data?.[0]?.id;
  return typeof id === 'string' ? id : undefined;
}

function classify(r: RawAnswer): ProbeAnswer {
  const a: ProbeAnswer = { path: r.path, status: r.status, excerpt: r.body.slice(0, 200), inference: looksLikeInference(r.path, r.status ?? 0, r.body), latency_ms: r.latency_ms };
  if (a.inference && r.path === '/v1/models') {
    const m = modelOf(r.body);
    if (m !== undefined) a.model = m;
  }
  if (r.error !== undefined) a.error = r.error;
  return a;
}

function send(port: number, ask: Ask, timeoutMs: number): Promise<RawAnswer> {
  const t0 = performance.now();
  const done = (a: Omit<RawAnswer, 'latency_ms' | 'path'>): RawAnswer => ({ path: ask.path, ...a, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 });
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'user-agent': 'redline-probe' };
    if (ask.body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(ask.body)) });
    const req = request({ host: '127.0.0.1', port, path: ask.path, method: ask.method, timeout: timeoutMs, headers }, (res) => {
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
    req.end(ask.body);
  });
}

// what runs inside the other namespace (CommonJS, no loader): beside this file in the sources; from dist/, in the sources
const IN_NETNS = ((): string => {
  const here = fileURLToPath(new URL('./probe-child.cjs', import.meta.url));
  return existsSync(here) ? here : fileURLToPath(new URL('../../../../daemon/sensors/ports/probe-child.cjs', import.meta.url));
})();

/** the requests in turn, from inside the network namespace process `pid` lives in */
function sendInNetns(pid: number, port: number, asks: Ask[], timeoutMs: number, stopAt2xx: boolean): Promise<RawAnswer[]> {
  const args = [`--net=/proc/${pid}/ns/net`, '--', process.execPath, IN_NETNS, String(port), String(timeoutMs), stopAt2xx ? '1' : '0', String(MAX_BODY), JSON.stringify(asks)];
  return new Promise((resolve) => {
    execFile('nsenter', args, { timeout: timeoutMs * asks.length + 2000, maxBuffer: 1 << 20 }, (err, stdout) => {
      const out: RawAnswer[] = [];
      for (const line of stdout.split('\n')) {
        if (!line) continue;
        const a = parseJson(line) as RawAnswer | undefined;
        if (a && typeof a.path === 'string') out.push({ ...a, body: String(a.body ?? '') });
      }
      if (out.length === 0 && err) out.push({ path: asks[0]?.path ?? '/', status: null, body: '', error: `could not probe inside the namespace: ${err.message.split('\n')[0]}`, latency_ms: 0 });
      resolve(out);
    });
  });
}

/** where to send: the daemon's own network namespace, or the listener's (by a pid in it) */
export interface Target {
  port: number;
  /** a pid in the listener's network namespace when it is not the daemon's */
  netnsPid?: number;
}

const GETS: Ask[] = PROBE_PATHS.map((path) => ({ method: 'GET', path }));

/** asks each path in turn; stops at the first answer that looks like an inference API */
export async function probe(t: Target, timeoutMs = 500): Promise<ProbeAnswer[]> {
  if (t.netnsPid !== undefined) {
    const out: ProbeAnswer[] = [];
    for (const a of (await sendInNetns(t.netnsPid, t.port, GETS, timeoutMs, false)).map(classify)) {
      out.push(a);
      if (a.inference) break;
    }
    return out;
  }
  const out: ProbeAnswer[] = [];
  for (const ask of GETS) {
    const a = classify(await send(t.port, ask, timeoutMs));
    out.push(a);
    if (a.inference || a.error) break;
  }
  return out;
}

export interface CanaryAnswer {
  /** the generated text; null when none came */
  text: string | null;
  path: string;
  status: number | null;
  error?: string;
  latency_ms: number;
}

/** the canary as a completion, then as a chat completion for a server that has only that */
export function canaryAsks(model: string | undefined): Ask[] {
  const common = { ...(model === undefined ? {} : { model }), max_tokens: CANARY_TOKENS, temperature: 0, top_k: 1, seed: 1, stream: false };
  return [
    { method: 'POST', path: '/v1/completions', body: JSON.stringify({ ...common, prompt: CANARY_PROMPT }) },
    { method: 'POST', path: '/v1/chat/completions', body: JSON.stringify({ ...common, messages: [{ role: 'user', content: CANARY_PROMPT }] }) },
  ];
}

/** the text of an OpenAI-style completion or chat completion */
export function completionText(status: number | null, body: string): string | null {
  if (status === null || status < 200 || status >= 300) return null;
  const j = parseJson(body) as { choices?: { text?: unknown; message?: { content?: unknown } }[] } | undefined;
  const c = j?.choices?.[0];
  const text = typeof c?.text === 'string' ? c.text : typeof c?.message?.content === 'string' ? c.message.content : null;
  return text;
}

function canaryOf(raws: RawAnswer[]): CanaryAnswer {
  let last: CanaryAnswer = { text: null, path: '/v1/completions', status: null, error: 'not asked', latency_ms: 0 };
  let ms = 0;
  for (const r of raws) {
    ms += r.latency_ms;
    last = { text: completionText(r.status, r.body), path: r.path, status: r.status, latency_ms: Math.round(ms * 1000) / 1000 };
    if (r.error !== undefined) last.error = r.error;
    if (last.text !== null) break;
  }
  return last;
}

/** asks the canary (timeoutMs each request: a CPU engine takes a moment for a few tokens) */
export async function askCanary(t: Target, model: string | undefined, timeoutMs = CANARY_TIMEOUT_MS): Promise<CanaryAnswer> {
  const asks = canaryAsks(model);
  if (t.netnsPid !== undefined) return canaryOf(await sendInNetns(t.netnsPid, t.port, asks, timeoutMs, true));
  const raws: RawAnswer[] = [];
  for (const ask of asks) {
    const r = await send(t.port, ask, timeoutMs);
    raws.push(r);
    if (r.error !== undefined || completionText(r.status, r.body) !== null) break;
  }
  return canaryOf(raws);
}

export type Functional = 'same' | 'different' | 'unknown';

/** the listener's canary against the original's: unknown when either gave no text */
export function compareCanary(mine: string | null, original: string | null): Functional {
  // (an empty answer says nothing of the model)
  if (!mine?.trim() || !original?.trim()) return 'unknown';
  return mine.trim() === original.trim() ? 'same' : 'different';
}
