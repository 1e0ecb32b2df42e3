// The serving probe's requests from inside another network namespace (a container's): run by
// ask.ts under nsenter as `node probe-child.cjs PORT TIMEOUT_MS STOP_AT_2XX MAX_BODY ASKS_JSON`.
// The same requests as ask.ts makes, one JSON line per answer; it stops at the first error,
// and at the first 2xx when told to.
const http = require('node:http');

const [port, timeout, stopAt2xx, maxBody, asks] = process.argv.slice(2);

function send(ask) {
  return new Promise((resolve) => {
    const headers = { 'user-agent': 'redline-probe' };
    if (ask.body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(ask.body)) });
    const req = http.request({ host: '127.0.0.1', port: Number(port), path: ask.path, method: ask.method, timeout: Number(timeout), headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        if (body.length < Number(maxBody)) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? null, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout} ms`)));
    req.on('error', (e) => resolve({ status: null, body: '', error: e.message }));
    req.end(ask.body);
  });
}

(async () => {
  for (const ask of JSON.parse(asks)) {
    const t0 = performance.now();
    const a = await send(ask);
    process.stdout.write(`${JSON.stringify({ path: ask.path, ...a, latency_ms: Math.round((performance.now() - t0) * 1000) / 1000 })}\n`);
    if (a.error || (stopAt2xx === '1' && a.status >= 200 && a.status < 300)) break;
  }
})();
