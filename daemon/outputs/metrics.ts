// `--metrics HOST:PORT`: Prometheus's `/metrics` (prom-client, a registry of its own). What it
// counts comes from the log's records as they reach the disk (alerts, actions, trial ends),
// read after the write that made them (setImmediate, off the event → alert → freeze path),
// and from the sensors' events as they arrive (one pre-bound counter per sensor). Gauges (the
// sensors up, the chain head, the NATS output) are read at scrape time.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { STAGES } from '../events.js';
import type { ChainHead } from './chain.js';

/** what the gauges read at scrape time: the monitor hands it over once it runs */
export interface MetricsSource {
  head: () => ChainHead;
  lost: () => number;
  /** each sensor's name and whether it runs now */
  sensorsUp: () => Record<string, boolean>;
  nats?: () => { connected: boolean; spoolBytes: number };
}

/** kernel event → alert on disk and → frozen: from a tenth of a millisecond to seconds */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const ALERT = '"kind":"alert"';
const ACTION = '"kind":"action"';
const TRIAL = '"kind":"trial"';

export class MetricsServer {
  readonly registry = new Registry();
  private readonly alerts: Counter<'category' | 'severity' | 'rule'>;
  private readonly events: Counter<'sensor'>;
  private readonly eventsBySensor = new Map<string, { inc: () => void }>();
  private readonly alertLatency: Histogram;
  private readonly freezeLatency: Histogram;
  private readonly trials: Counter<'stage'>;
  /** each running trial's furthest stage so far */
  private readonly furthest = new Map<string, number>();
  private queued: string[] = [];
  private server: Server | null = null;

  /** until the monitor attaches, the gauges read nothing */
  private src: MetricsSource = { head: () => ({ seq: -1, hash: '' }), lost: () => 0, sensorsUp: () => ({}) };

  constructor(
    private readonly host: string,
    private readonly port: number,
    /** --nats is on: the NATS output's gauges exist (absent otherwise, so no alert reads a 0 as "down") */
    withNats = false,
  ) {
    const registers = [this.registry];
    const src = () => this.src;
    this.alerts = new Counter({ name: 'redline_alerts_total', help: 'alerts written, by category, severity and rule', labelNames: ['category', 'severity', 'rule'], registers });
    this.events = new Counter({ name: 'redline_events_total', help: 'events the sensors delivered, by sensor', labelNames: ['sensor'], registers });
    new Counter({
      name: 'redline_events_lost_total',
      help: 'events the sensors lost (what the subject did then was not seen)',
      registers,
      collect() {
        this.reset();
        this.inc(src().lost());
      },
    });
    this.alertLatency = new Histogram({ name: 'redline_alert_latency_seconds', help: 'kernel event to alert on disk', buckets: LATENCY_BUCKETS, registers });
    this.freezeLatency = new Histogram({ name: 'redline_freeze_latency_seconds', help: 'kernel event to subject frozen (else the freeze call itself)', buckets: LATENCY_BUCKETS, registers });
    new Gauge({
      name: 'redline_sensor_up',
      help: '1 while the sensor runs, 0 when it died or is off',
      labelNames: ['sensor'],
      registers,
      collect() {
        for (const [sensor, up] of Object.entries(src().sensorsUp())) this.set({ sensor }, up ? 1 : 0);
      },
    });
    this.trials = new Counter({ name: 'redline_trials_total', help: 'trials ended, by the furthest replication stage reached ("none": none)', labelNames: ['stage'], registers });
    new Gauge({
      name: 'redline_chain_head_seq',
      help: 'seq of the last record sealed into the audit log',
      registers,
      collect() {
        this.set(src().head().seq);
      },
    });
    if (!withNats) return;
    new Gauge({
      name: 'redline_nats_connected',
      help: '1 while the NATS output is connected',
      registers,
      collect() {
        this.set(src().nats?.().connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'redline_nats_spool_bytes',
      help: 'records waiting on disk for NATS',
      registers,
      collect() {
        this.set(src().nats?.().spoolBytes ?? 0);
      },
    });
  }

  attach(src: MetricsSource): void {
    this.src = src;
  }

  /** one event from `sensor` (on the hot path: a pre-bound counter, no label lookup) */
  event(sensor: string): void {
    let c = this.eventsBySensor.get(sensor);
    if (!c) {
      c = this.events.labels(sensor);
      this.eventsBySensor.set(sensor, c);
    }
    c.inc();
  }

  /** a record's line, once on disk: what concerns the metrics is read in the next turn */
  record(line: string): void {
    if (!line.includes(ALERT) && !line.includes(ACTION) && !line.includes(TRIAL)) return;
    if (this.queued.length === 0) setImmediate(() => this.drain());
    if (this.queued.length < 100_000) this.queued.push(line);
  }

  private drain(): void {
    const lines = this.queued;
    this.queued = [];
    for (const line of lines) {
      try {
        this.count(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line the log wrote is JSON; nothing to count otherwise
      }
    }
  }

  private count(r: Record<string, unknown>): void {
    const trial = typeof r.trial === 'string' ? r.trial : null;
    if (r.kind === 'alert') {
      this.alerts.inc({ category: String(r.category), severity: String(r.severity), rule: String(r.rule) });
      if (typeof r.latency_ms === 'number') this.alertLatency.observe(r.latency_ms / 1000);
      const stage = (STAGES as readonly unknown[]).indexOf(r.category);
      if (trial && stage >= 0 && stage > (this.furthest.get(trial) ?? -1)) this.furthest.set(trial, stage);
    } else if (r.kind === 'action' && r.action === 'freeze' && r.ok === true) {
      const ms = typeof r.since_event_ms === 'number' ? r.since_event_ms : r.latency_ms;
      if (typeof ms === 'number') this.freezeLatency.observe(ms / 1000);
    } else if (r.kind === 'trial' && r.phase === 'end' && trial) {
      const at = this.furthest.get(trial);
      this.trials.inc({ stage: at === undefined ? 'none' : (STAGES[at] as string) });
      this.furthest.delete(trial);
    }
  }

  /** listens; a port already taken is an error at start, in words */
  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('redline serves /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the port is already taken' : err.code === 'EACCES' ? 'not allowed to listen there' : err.message;
        reject(new Error(`--metrics ${this.host}:${this.port}: ${why}`));
      });
      server.listen(this.port, this.host, () => resolve());
    });
    this.server = server;
    const addr = server.address();
    return { host: this.host, port: typeof addr === 'object' && addr ? addr.port : this.port };
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
