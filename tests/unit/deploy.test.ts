// deploy/: the Kubernetes DaemonSet validates against the Kubernetes schemas (kubernetes-models)
// and has what the daemon needs on a node; the Prometheus rules pass promtool's check and
// unit tests, and use only the metrics the daemon exports.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { parse, parseAllDocuments } from 'yaml';
import { findExecutable } from '../../daemon/sensors/ebpf/host.js';
import { ROOT } from '../helpers/redline.js';

const MANIFEST = join(ROOT, 'deploy', 'kubernetes', 'redline-daemonset.yaml');
const RULES = join(ROOT, 'deploy', 'prometheus', 'redline-alerts.yml');
const RULES_TEST = join(ROOT, 'deploy', 'prometheus', 'redline-alerts.test.yml');

/** the metrics the daemon exports (a histogram also as _bucket, _sum and _count) */
const COUNTERS_AND_GAUGES = [
  'redline_alerts_total', 'redline_events_total', 'redline_events_lost_total', 'redline_sensor_up',
  'redline_trials_total', 'redline_chain_head_seq', 'redline_nats_connected', 'redline_nats_spool_bytes',
];
const HISTOGRAMS = ['redline_alert_latency_seconds', 'redline_freeze_latency_seconds'];
const METRICS = new Set([...COUNTERS_AND_GAUGES, ...HISTOGRAMS.flatMap((h) => ['', '_bucket', '_sum', '_count'].map((s) => h + s))]);

const docs = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((d) => {
  assert.deepEqual(d.errors, [], `${MANIFEST} parses`);
  return d.toJS() as { kind?: string };
});
const daemonSet = new DaemonSet(docs.find((d) => d.kind === 'DaemonSet') as ConstructorParameters<typeof DaemonSet>[0]);
const pod = daemonSet.spec?.template.spec;
const container = pod?.containers.find((c) => c.name === 'redline');

test('the manifest is a Namespace and a DaemonSet, each valid against the Kubernetes schema', () => {
  assert.deepEqual(docs.map((d) => d.kind), ['Namespace', 'DaemonSet']);
  for (const d of docs) {
    const model = d.kind === 'DaemonSet' ? new DaemonSet(d as ConstructorParameters<typeof DaemonSet>[0]) : new Namespace(d as ConstructorParameters<typeof Namespace>[0]);
    assert.doesNotThrow(() => model.validate(), `${d.kind} validates`);
  }
  assert.equal(daemonSet.metadata?.namespace, 'redline');
  assert.deepEqual(daemonSet.spec?.selector.matchLabels, daemonSet.spec?.template.metadata?.labels);
});

test('the schema check is not vacuous: a wrong type is refused', () => {
  const bad = structuredClone(docs.find((d) => d.kind === 'DaemonSet')) as { spec: { template: { spec: { hostPID: unknown } } } };
  bad.spec.template.spec.hostPID = 'yes';
  assert.throws(() => new DaemonSet(bad as unknown as ConstructorParameters<typeof DaemonSet>[0]).validate(), /hostPID must be boolean/);
});

test('the pod sees the host: host pid namespace, privileged, as root, node-critical', () => {
  assert.ok(pod && container, 'the DaemonSet has a redline container');
  assert.equal(pod.hostPID, true);
  assert.equal(container.securityContext?.privileged, true);
  assert.equal(container.securityContext?.runAsUser, 0);
  assert.equal(pod.priorityClassName, 'system-node-critical');
  assert.equal(pod.nodeSelector?.['nvidia.com/gpu.present'], 'true');
});

test('the host paths it needs are mounted: cgroup (writable), tracing, debugfs, BTF (read-only), the log, the control socket', () => {
  const hostPaths = new Map((pod?.volumes ?? []).map((v) => [v.name, v.hostPath?.path]));
  const mounts = new Map((container?.volumeMounts ?? []).map((m) => [m.mountPath, m]));
  const want: [string, boolean][] = [
    ['/sys/fs/cgroup', false], ['/sys/kernel/tracing', false], ['/sys/kernel/debug', false],
    ['/sys/kernel/btf', true], ['/var/log/redline', false], ['/run/redline', false],
  ];
  for (const [path, readOnly] of want) {
    const m = mounts.get(path);
    assert.ok(m, `${path} is mounted`);
    assert.equal(hostPaths.get(m.name), path, `${path} is the host's ${path}`);
    assert.equal(m.readOnly ?? false, readOnly, `${path} is ${readOnly ? 'read-only' : 'writable'}`);
  }
});

test('it runs `redline run --trials-under` a kubepods parent, logs under the mounted folder, enforces', () => {
  const args = container?.args ?? [];
  const arg = (flag: string) => args[args.indexOf(flag) + 1];
  assert.equal(args[0], 'run');
  assert.ok(args.includes('--trials-under'));
  assert.match(arg('--trials-under') ?? '', /^\/sys\/fs\/cgroup\/kubepods[^ ]*pod\*/);
  assert.match(arg('--log') ?? '', /^\/var\/log\/redline\//);
  assert.equal(arg('--mode'), 'enforce');
  assert.ok(container?.env?.some((e) => e.name === 'REDLINE_WS_TOKEN' && e.valueFrom?.secretKeyRef), 'the websocket token comes from a Secret');
});

test('the metrics port is exposed, probed for readiness and annotated for scraping', () => {
  const args = container?.args ?? [];
  const metrics = args[args.indexOf('--metrics') + 1] ?? '';
  const port = Number(metrics.split(':').at(-1));
  assert.equal(port, 9477);
  const named = container?.ports?.find((p) => p.containerPort === port);
  assert.ok(named, 'the metrics port is a container port');
  const probe = container?.readinessProbe?.httpGet;
  assert.equal(probe?.path, '/metrics');
  assert.ok(probe?.port === port || probe?.port === named.name, 'the readiness probe asks the metrics port');
  const annotations = daemonSet.spec?.template.metadata?.annotations ?? {};
  assert.equal(annotations['prometheus.io/scrape'], 'true');
  assert.equal(annotations['prometheus.io/port'], String(port));
});

const PROMTOOL = findExecutable('promtool') ? false : 'promtool is not installed (apt-get install -y prometheus)';

test('promtool check rules accepts the alerting rules', { skip: PROMTOOL }, () => {
  const r = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('promtool test rules: a high alert and a sensor down fire, the quiet ones do not', { skip: PROMTOOL }, () => {
  const r = spawnSync('promtool', ['test', 'rules', RULES_TEST], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

/** the metric names in a PromQL expression: identifiers that are not functions, keywords, label names or durations */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ''); // label lists
  const keywords = new Set(['bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);
  // a word not followed by `(` (a function); \b keeps the tail of 5m or 1e3 out
  return [...stripped.matchAll(/\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()/g)].map((m) => m[0]).filter((w) => !keywords.has(w.toLowerCase()));
}

test('the rules use only the metrics the daemon exports', () => {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: { alert?: string; expr: string }[] }[] };
  assert.deepEqual(doc.groups.map((g) => g.name), ['redline']);
  const alerts = doc.groups.flatMap((g) => g.rules);
  for (const a of ['RedlineHighSeverityAlert', 'RedlineSensorDown', 'RedlineEventsLost', 'RedlineNatsDisconnected']) {
    assert.ok(alerts.some((r) => r.alert === a), `${a} is defined`);
  }
  for (const r of alerts) {
    const names = metricNames(r.expr);
    assert.ok(names.length > 0, `${r.alert} reads a metric`);
    for (const n of names) assert.ok(METRICS.has(n), `${r.alert}: ${n} is not a metric the daemon exports`);
  }
  assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(redline_freeze_latency_seconds_bucket{a="b"}[5m]))) > 1'), ['redline_freeze_latency_seconds_bucket']);
});
