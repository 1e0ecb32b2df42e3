// Where the records go besides the log: NATS and the metrics (opened before the monitor), the
// websocket stream and the control socket (started last, each an alert when it cannot start),
// and the operator both act through.
import { controlHandler } from '../control/commands.js';
import { Operator } from '../control/operator.js';
import { ControlServer, type ControlRequest } from '../control/server.js';
import { ensureToken, StreamServer } from '../outputs/stream.js';
import { setGate } from './copy-gate.js';
import type { Parts } from './parts.js';
import { status } from './status.js';

/** every record on disk to NATS and the metrics; their trouble to the log as monitor.degraded */
export function wireOutputs(p: Parts): void {
  const { nats, metrics } = p.o.outputs ?? {};
  if (nats) {
    p.log.on('record', (sealed) => nats.push(sealed.line, sealed.seq, sealed.hash));
    nats.attach({
      degraded: (summary) => p.pipeline.daemonAlert('redline.nats-degraded', 'monitor.degraded', 'medium', summary),
      recovered: (detail) => p.log.append({ kind: 'daemon', phase: 'output-recovered', output: 'nats', detail }),
    });
  }
  if (metrics) {
    p.log.on('record', (sealed) => metrics.record(sealed.line));
    metrics.attach({
      head: () => p.log.head(),
      lost: () => p.pipeline.counts.lost,
      sensorsUp: () => ({ [p.sensor.name]: p.sensor.health().running, ...(p.gpu ? { gpu: p.gpuUp } : {}) }),
      ...(nats ? { nats: () => nats.status() } : {}),
    });
  }
  p.log.on('error', (err: Error) => {
    // the record is queued in memory and retried; say so on stderr (the log itself is failing)
    process.stderr.write(`redline: audit log write failed, records held in memory: ${err.message}\n`);
  });
}

/** the websocket stream, when configured; a failure to start is an alert, not a stop */
export async function startStream(p: Parts, reload: () => ReturnType<Operator['reload']>): Promise<void> {
  const ws = p.o.config.ws;
  if (!ws) return;
  try {
    const { token, file } = ensureToken(p.o.config.wsToken, ws.port);
    p.tokenFile = file;
    // operator tokens (NAME:TOKEN) may also freeze, thaw, kill and switch the mode from the dashboard
    const operators = p.o.config.wsOperatorTokens.map((v) => ({ name: v.slice(0, v.indexOf(':')), token: v.slice(v.indexOf(':') + 1) }));
    const operate = (req: ControlRequest, who: string) => controlHandler(operator(p, reload), `dashboard:${who}`)(req);
    const stream = new StreamServer({ host: ws.host, port: ws.port, token, logPath: p.log.path, head: () => p.log.head(), seal: () => p.log.lastSeal()?.record ?? null, heartbeatMs: p.o.config.wsHeartbeatMs, operators, control: operate });
    const port = await stream.start();
    p.stream = stream;
    p.log.on('record', (sealed) => stream.publish(sealed));
    p.log.append({ kind: 'daemon', phase: 'output', output: 'websocket', url: `ws://${ws.host.includes(':') ? `[${ws.host}]` : ws.host}:${port}/stream`, token_file: file });
  } catch (err) {
    p.pipeline.daemonAlert('redline.websocket-off', 'monitor.degraded', 'medium', `websocket stream on ${ws.host}:${ws.port} is off: ${(err as Error).message}`);
  }
}

/** the control socket, when configured; a failure to start is an alert, not a stop */
export async function startControl(p: Parts, reload: () => ReturnType<Operator['reload']>): Promise<void> {
  const path = p.o.config.socket;
  if (!path) return;
  const control = new ControlServer(path, controlHandler(operator(p, reload)));
  try {
    await control.start();
    p.control = control;
    p.log.append({ kind: 'daemon', phase: 'output', output: 'control', socket: path });
  } catch (err) {
    p.pipeline.daemonAlert('redline.control-off', 'monitor.degraded', 'medium', `control socket ${path} is off: ${(err as Error).message}`);
  }
}

/** what the control socket and the dashboard's operators act through: one, shared */
function operator(p: Parts, reload: () => ReturnType<Operator['reload']>): Operator {
  p.operator ??= new Operator({
    pipeline: p.pipeline,
    log: p.log,
    status: () => status(p),
    reload,
    modeChanged: (mode) => {
      p.deadman?.freezeOnLoss(mode === 'enforce' || p.o.config.failClosed);
      p.guard?.mode(mode === 'enforce');
      setGate(p, mode);
    },
    trials: p.trials,
    ...(p.o.trial ? { fixedTrial: p.o.trial } : {}),
  });
  return p.operator;
}

/** SIGUSR2 (logrotate): the same path opened again; the chain continues in the new file */
export function rotateLog(p: Parts): void {
  const before = p.log.head();
  p.log.reopen();
  // the new file is a new inode: the guard refuses writes to it too
  p.guard?.files([p.log.path]);
  p.log.append({ kind: 'daemon', phase: 'log-reopened', continues: before });
}
