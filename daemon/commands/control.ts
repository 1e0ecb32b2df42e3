// `redline status|freeze|thaw|kill|reload|mode|trial`: one request to a running daemon's
// control socket. Exit 0 when it did it, 1 when it refused, failed or could not be reached.
import { ControlUnavailable, sendControl } from '../control/client.js';
import type { ControlReply, ControlRequest } from '../control/server.js';
import { DEFAULTS } from '../config/schema.js';

function describe(req: ControlRequest, r: ControlReply): string {
  if (!r.ok) return `refused: ${r.error}`;
  switch (req.cmd) {
    case 'status':
      return JSON.stringify(r, null, 2);
    case 'freeze':
    case 'thaw':
    case 'kill': {
      const already = (r.detail as { already?: boolean } | undefined)?.already;
      return `${req.cmd}: done in ${r.latency_ms} ms${already ? ' (it was frozen already)' : ''}`;
    }
    case 'reload':
      return `rules reloaded: ${r.rules} rules`;
    case 'mode':
      return `mode: ${r.previous} → ${r.mode}`;
    default:
      return JSON.stringify(r);
  }
}

export async function controlCommand(req: ControlRequest, socket: string | undefined, out = process.stdout, err = process.stderr): Promise<number> {
  const path = socket ?? DEFAULTS.socket;
  try {
    const reply = await sendControl(path, req);
    (reply.ok ? out : err).write(`${describe(req, reply)}\n`);
    return reply.ok ? 0 : 1;
  } catch (e) {
    if (!(e instanceof ControlUnavailable)) throw e;
    err.write(`redline: ${e.message}\n`);
    return 1;
  }
}
