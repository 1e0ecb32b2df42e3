// Sends one request to a running daemon's control socket and waits for its answer.
import { connect } from 'node:net';
import type { ControlReply, ControlRequest } from './server.js';

export class ControlUnavailable extends Error {}

export function sendControl(path: string, req: ControlRequest, timeoutMs = 10_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ControlUnavailable(`${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify(req)}\n`));
    s.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      s.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as ControlReply);
      } catch {
        reject(new ControlUnavailable(`${path}: the answer was not JSON`));
      }
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(new ControlUnavailable(`${path}: ${err.message} (is redline running, and are you root?)`));
    });
    s.on('close', () => {
      clearTimeout(timer);
      reject(new ControlUnavailable(`${path}: closed without an answer`));
    });
  });
}
