// The dashboard's static files, served on the websocket address (GET /). Three files, no build
// step, nothing from outside: the page asks for the token and opens the stream with it, so the
// files carry no data and the token never reaches them. Read once, on first request.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** the page may run its own script and style and talk to this address's websocket; nothing else */
const CSP = ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"].join('; ');

const HEADERS = {
  'content-security-policy': CSP,
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** the files' folder: beside this module in the sources, or the sources' from dist/ */
function dir(): string {
  const here = fileURLToPath(new URL('./dashboard/', import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL('../../../daemon/outputs/dashboard/', import.meta.url));
}

const cache = new Map<string, Buffer>();

export function dashboardResponse(url: string): { headers: Record<string, string>; body: Buffer } | null {
  const path = url.split('?')[0] ?? '/';
  const f = FILES[path];
  if (!f) return null;
  let body = cache.get(f.file);
  if (!body) {
    body = readFileSync(`${dir()}${f.file}`);
    cache.set(f.file, body);
  }
  return { headers: { ...HEADERS, 'content-type': f.type }, body };
}
