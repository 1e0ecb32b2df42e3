// The serving probe against real servers on real sockets: every listener that answers like an
// inference API is asked the canary, and so is the allowed original (once); the answers
// compared say whether it serves the protected model. The fake server's completions depend on
// the bytes it loaded, as a real model's do.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ProbeEvent } from '../../daemon/events.js';
import { ProbeScheduler } from '../../daemon/analyze/probes.js';
import { ROOT, tempDir } from '../helpers/redline.js';

const SERVER = join(ROOT, 'tests/fixtures/fake_server.py');
const root = process.getuid?.() === 0;

describe('the canary: does a listener answer like the protected model?', () => {
  const tmp = tempDir();
  const kids: ChildProcess[] = [];
  const weights = () => join(tmp.dir, 'model.safetensors');

  const serve = async (name: string, argv: string[], wrap: string[] = []): Promise<{ pid: number; port: number }> => {
    const portFile = join(tmp.dir, `${name}.port`);
    const cmd = [...wrap, ...argv, '--port-file', portFile];
    const c = spawn(cmd[0] as string, cmd.slice(1), { stdio: 'ignore' });
    kids.push(c);
    for (let i = 0; i < 500 && !(existsSync(portFile) && readFileSync(portFile, 'utf8').trim()); i++) await new Promise((r) => setTimeout(r, 10));
    return { pid: c.pid as number, port: Number(readFileSync(portFile, 'utf8')) };
  };
  const fake = (name: string, w: string, wrap: string[] = []) => serve(name, ['python3', SERVER, '--weights', w, '--lifetime', '120'], wrap);

  let original: { pid: number; port: number };
  before(async () => {
    const bytes = Buffer.alloc(3 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    writeFileSync(weights(), bytes);
    original = await fake('original', weights());
  });
  after(() => {
    for (const c of kids) c.kill('SIGKILL');
    tmp.cleanup();
  });

  /** every probe event a scheduler emits for one listener, until the one that answered (or 6 s) */
  const judge = async (l: { pid: number; port: number }, originals: number[]): Promise<ProbeEvent[]> => {
    const s = new ProbeScheduler({ probeTimeoutMs: 500, canaryTimeoutMs: 3000, originals: () => originals });
    const got: ProbeEvent[] = [];
    s.on('event', (e) => got.push(e));
    s.listens({ type: 'listen', time: Date.now(), pid: l.pid, fd: 3, seen_by: 'listen', proto: 'tcp', addr: '127.0.0.1', port: l.port, loopback: true });
    for (let i = 0; i < 600 && !got.some((e) => e.inference); i++) await new Promise((r) => setTimeout(r, 10));
    await s.stop();
    return got;
  };
  const hit = (evs: ProbeEvent[]) => evs.find((e) => e.inference);

  test('a byte copy under another name answers the canary as the original does: same', async () => {
    const copy = join(tmp.dir, 'notes.bin');
    copyFileSync(weights(), copy);
    const h = hit(await judge(await fake('copy', copy), [original.pid]));
    assert.ok(h, 'it answered like an inference API');
    assert.equal(h.functional, 'same');
    assert.equal(h.model, 'fake-model');
    assert.equal(h.canary, h.original_canary);
    assert.equal(h.original_port, original.port);
    assert.ok((h.canary ?? '').length > 0);
  });

  test('another model, and a converted (half-size) copy, answer differently', async () => {
    const other = join(tmp.dir, 'other.bin');
    writeFileSync(other, Buffer.alloc(3 << 20, 7));
    const half = join(tmp.dir, 'half.bin');
    const src = readFileSync(weights());
    const out = Buffer.alloc(src.length / 2);
    for (let i = 0; i + 1 < out.length; i += 2) src.copy(out, i, i * 2, i * 2 + 2);
    writeFileSync(half, out);
    for (const w of [other, half]) {
      const h = hit(await judge(await fake(`d-${w.length}`, w), [original.pid]));
      assert.equal(h?.functional, 'different', w);
      assert.notEqual(h?.canary, h?.original_canary);
    }
  });

  test('no original to ask, or a server that has no completion route: unknown', async () => {
    const copy = join(tmp.dir, 'copy2.bin');
    copyFileSync(weights(), copy);
    assert.equal(hit(await judge(await fake('alone', copy), []))?.functional, 'unknown');
    // answers GET /v1/models, refuses POST
    const listOnly = await serve('list-only', ['python3', '-c', [
      'import http.server, json, sys',
      'class H(http.server.BaseHTTPRequestHandler):',
      '    def do_GET(self):',
      '        b = json.dumps({"object": "list", "data": [{"id": "m"}]}).encode(); self.send_response(200); self.end_headers(); self.wfile.write(b)',
      '    def log_message(self, *a): pass',
      's = http.server.HTTPServer(("127.0.0.1", 0), H); open(sys.argv[2], "w").write(str(s.server_address[1])); s.serve_forever()',
    ].join('\n')]);
    const h = hit(await judge(listOnly, [original.pid]));
    assert.equal(h?.functional, 'unknown');
    assert.equal(h?.canary, null);
  });

  test('an ordinary web server is asked its three GETs and is no inference API', async () => {
    const web = await serve('web', ['python3', '-c', 'import http.server, sys\ns = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)\nopen(sys.argv[2], "w").write(str(s.server_address[1]))\ns.serve_forever()']);
    const s = new ProbeScheduler({ probeTimeoutMs: 500, originals: () => [original.pid] });
    const got: ProbeEvent[] = [];
    s.on('event', (e) => got.push(e));
    s.listens({ type: 'listen', time: Date.now(), pid: web.pid, fd: 3, seen_by: 'listen', proto: 'tcp', addr: '127.0.0.1', port: web.port, loopback: true });
    await new Promise((r) => setTimeout(r, 1500));
    await s.stop();
    // the first two tries (at 150 ms and 1 s): /v1/models, /health, / each
    assert.deepEqual(got.map((e) => e.path), ['/v1/models', '/health', '/', '/v1/models', '/health', '/']);
    assert.ok(got.every((e) => !e.inference && e.functional === undefined));
    assert.equal(got[2]?.status, 200);
  });

  test('a copy served inside its own network namespace is asked from inside it: same', { skip: root ? false : 'needs root (unshare -n)' }, async () => {
    const copy = join(tmp.dir, 'ns-copy.bin');
    copyFileSync(weights(), copy);
    const inNs = await fake('netns', copy, ['unshare', '-n', 'sh', '-c', 'ip link set lo up; exec "$@"', 'sh']);
    const h = hit(await judge(inNs, [original.pid]));
    assert.equal(h?.netns, true);
    assert.equal(h?.functional, 'same');
  });
});
