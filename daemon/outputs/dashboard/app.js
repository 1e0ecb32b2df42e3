// redline's dashboard: the daemon's stream, live, in the browser. Plain DOM, no framework, no
// build step. Everything in a record may come from the agent under watch (process names,
// command lines, paths, summaries): it is only ever set as text (textContent, a text node or
// an attribute value), never parsed as markup; no markup is built from strings here.
// The token lives in this page's memory only: not in its address (a ?token= is removed at
// once), not in storage, not in a log.
const STAGES = ['weights.read', 'weights.copy', 'replica.spawn', 'replica.listen', 'replica.serving', 'replica.chain'];
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];
const TIMELINE_CAP = 500;
const SVG = 'http://www.w3.org/2000/svg';

let token = null;
let ws = null;
let lastSeq = -1;
let opened = false;
let retryMs = 250;
let nextId = 1;
let dirty = false;
const state = { daemon: { host: '', mode: '', version: '', started: null, sensors: new Map() }, head: null, operator: null, trials: new Map(), banners: new Map(), selected: null, records: 0 };

const $ = (id) => document.getElementById(id);

/** an element with attributes and children; strings become text nodes (never markup) */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function trialOf(id) {
  let t = state.trials.get(id);
  if (!t) {
    t = { id, start: null, end: null, stage: -1, bySeverity: Object.fromEntries(SEVERITIES.map((s) => [s, 0])), frozen: false, timeline: [], omitted: 0, procs: new Map() };
    state.trials.set(id, t);
    if (state.selected === null) state.selected = id;
  }
  return t;
}

function note(proc, alert) {
  // the process and its ancestors, as the alert recorded them (kept across reparenting)
  const t = trialOf(alert.trial ?? '(no trial)');
  const chain = [...(proc.ancestors ?? [])].reverse();
  let parent = null;
  for (const a of chain) {
    if (!t.procs.has(a.pid)) t.procs.set(a.pid, { pid: a.pid, comm: a.comm, args: [], parent, alerts: [] });
    parent = a.pid;
  }
  const node = t.procs.get(proc.pid) ?? { pid: proc.pid, comm: proc.comm, args: [], parent, alerts: [] };
  node.comm = proc.comm;
  node.args = Array.isArray(proc.args) ? proc.args.slice(0, 16) : [];
  if (node.alerts.length < 50) node.alerts.push(`${alert.severity} ${alert.category}: ${alert.summary} (#${alert.seq})`);
  t.procs.set(proc.pid, node);
}

function apply(r) {
  state.records++;
  if (r.kind === 'daemon') {
    if (r.phase === 'start') Object.assign(state.daemon, { host: r.host, mode: r.mode, version: r.version, started: r.time });
    if (r.phase === 'sensor') state.daemon.sensors.set(String(r.sensor), { up: !String(r.detail ?? '').startsWith('off'), detail: String(r.detail ?? '') });
    if (r.phase === 'output' && r.output === 'websocket') state.banners.delete('stopped');
    if (r.phase === 'sensor-trouble') {
      state.daemon.sensors.set(String(r.sensor), { up: false, detail: `${r.reason}: ${r.detail ?? ''}` });
      state.banners.set(`sensor:${r.sensor}`, `The ${r.sensor} sensor: ${r.reason}${r.lost ? ` (${r.lost} events lost)` : ''}. What the agent does now may go unseen.`);
    }
    if (r.phase === 'sensor-restarted' || r.phase === 'sensor-recovered') {
      state.daemon.sensors.set(String(r.sensor), { up: true, detail: r.phase });
      state.banners.delete(`sensor:${r.sensor}`);
    }
    if (r.phase === 'stop') state.banners.set('stopped', `The daemon stopped (${r.reason ?? ''}).`);
    if (r.phase === 'start') state.banners.delete('stopped');
  } else if (r.kind === 'trial') {
    const t = trialOf(r.trial);
    if (r.phase === 'start') t.start = r.time;
    if (r.phase === 'end') t.end = r.time;
    timeline(t, { seq: r.seq, time: r.time, lane: 'trial', severity: null, label: `trial ${r.phase}` });
  } else if (r.kind === 'alert') {
    if (r.category === 'monitor.degraded') state.banners.set(`alert:${r.rule}`, `${r.summary}`);
    const t = trialOf(r.trial ?? '(no trial)');
    if (SEVERITIES.includes(r.severity)) t.bySeverity[r.severity]++;
    const at = STAGES.indexOf(r.category);
    if (at > t.stage) t.stage = at;
    timeline(t, { seq: r.seq, time: r.time, lane: String(r.category), severity: r.severity, label: String(r.summary) });
    if (r.proc && typeof r.proc.pid === 'number') note(r.proc, r);
  } else if (r.kind === 'action') {
    if (r.action === 'mode' && r.ok) state.daemon.mode = r.mode;
    if ((r.action === 'freeze' || r.action === 'thaw' || r.action === 'kill') && r.ok) {
      const ts = r.trial ? [trialOf(r.trial)] : [...state.trials.values()].filter((x) => x.end === null);
      for (const t of ts) {
        if (r.action === 'freeze') t.frozen = true;
        if (r.action === 'thaw') t.frozen = false;
        timeline(t, { seq: r.seq, time: r.time, lane: 'action', severity: null, label: `${r.action} (${r.cause})` });
      }
    }
  }
}

function timeline(t, entry) {
  if (t.timeline.length < TIMELINE_CAP) t.timeline.push(entry);
  else t.omitted++;
}

function schedule() {
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(render);
}

function render() {
  dirty = false;
  const d = state.daemon;
  // a sensor the host does not have (no nvidia-smi) is off, not down
  const sensors = [...d.sensors].map(([name, s]) => (s.detail.startsWith('off') ? el('span', { class: 'off', title: s.detail }, `${name} off`) : el('span', { class: s.up ? 'ok' : 'bad', title: s.detail }, `${name} ${s.up ? 'up' : 'DOWN'}`)));
  const up = d.started ? `${Math.round((Date.now() - d.started) / 1000)} s` : '?';
  const daemon = el('div', {}, el('b', {}, d.host || '?'), ` · mode ${d.mode || '?'} · redline ${d.version || '?'} · up ${up} · chain head #${state.head?.seq ?? lastSeq} · ${state.records} records · sensors: `);
  for (const s of sensors) daemon.append(s, ' ');
  $('daemon').replaceChildren(daemon);
  $('banners').replaceChildren(...[...state.banners.values()].map((b) => el('div', { class: 'banner' }, b)));
  const rows = [...state.trials.values()].map((t) => {
    const bar = el('div', { class: 'stages', title: t.stage >= 0 ? STAGES[t.stage] : 'no stage reached' }, ...STAGES.map((s, i) => el('span', { class: i <= t.stage ? 'stage reached' : 'stage', 'data-stage': s })));
    const counts = el('span', {}, ...SEVERITIES.filter((s) => t.bySeverity[s] > 0).map((s) => el('span', { class: `sev ${s}`, title: s }, t.bySeverity[s])));
    const status = el('span', { class: t.frozen ? 'frozen' : '' }, t.frozen ? 'FROZEN' : t.end ? 'ended' : 'running');
    const row = el('tr', { class: t.id === state.selected ? 'trial selected' : 'trial', 'data-trial': t.id }, el('td', {}, t.id), el('td', {}, el('div', { class: 'stagecell' }, bar, el('span', { class: 'stage-name' }, t.stage >= 0 ? STAGES[t.stage] : '—'))), el('td', {}, counts), el('td', {}, status));
    row.addEventListener('click', () => {
      state.selected = t.id;
      schedule();
    });
    return row;
  });
  $('trials').tBodies[0].replaceChildren(...rows);
  renderDetail();
}

function renderDetail() {
  const t = state.selected === null ? null : state.trials.get(state.selected);
  $('detail').hidden = !t;
  if (!t) return;
  $('detail-title').textContent = `Trial ${t.id}`;
  const lanes = [...new Set(t.timeline.map((e) => e.lane))].sort((a, b) => rank(a) - rank(b));
  const width = 1000;
  const left = 150;
  const laneH = 22;
  const height = lanes.length * laneH + 20;
  const times = t.timeline.map((e) => e.time);
  const t0 = t.start ?? Math.min(...times);
  const t1 = Math.max(t.end ?? 0, ...times, t0 + 1);
  const x = (time) => left + ((time - t0) / (t1 - t0)) * (width - left - 20);
  const s = svg('svg', { class: 'timeline', viewBox: `0 0 ${width} ${height}`, 'data-trial': t.id });
  lanes.forEach((lane, i) => {
    const y = i * laneH + laneH / 2 + 5;
    const label = svg('text', { x: left - 8, y: y + 4, 'text-anchor': 'end', class: 'lane' });
    label.textContent = lane;
    s.append(label, svg('line', { x1: left, x2: width - 20, y1: y, y2: y, class: 'laneline' }));
  });
  for (const e of t.timeline) {
    const y = lanes.indexOf(e.lane) * laneH + laneH / 2 + 5;
    const dot = svg('circle', { cx: x(e.time).toFixed(1), cy: y, r: 5, fill: color(e), class: 'event', 'data-seq': e.seq });
    const tip = svg('title');
    tip.textContent = `#${e.seq} +${((e.time - t0) / 1000).toFixed(3)} s ${e.severity ?? ''} ${e.lane}: ${e.label}`;
    dot.append(tip);
    s.append(dot);
  }
  $('timeline').replaceChildren(s, ...(t.omitted > 0 ? [el('p', {}, `${t.omitted} more records are not drawn`)] : []));
  // the process tree: roots are processes whose parent is not in it
  const children = new Map();
  for (const p of t.procs.values()) {
    const key = t.procs.has(p.parent) ? p.parent : null;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(p);
  }
  const branch = (key, depth) =>
    (children.get(key) ?? []).map((p) => {
      const li = el('li', { 'data-pid': p.pid }, el('span', { class: 'comm' }, p.comm), ` (pid ${p.pid}) `, el('span', { class: 'args' }, p.args.join(' ')));
      if (p.alerts.length > 0) li.append(el('ul', {}, ...p.alerts.map((a) => el('li', { class: 'alert-line' }, a))));
      if (depth < 32 && children.has(p.pid)) li.append(el('ul', {}, ...branch(p.pid, depth + 1)));
      return li;
    });
  $('tree').replaceChildren(...branch(null, 0));
}

function rank(lane) {
  const order = [...STAGES, 'process.kill', 'process.detach', 'monitor.tamper', 'network.egress', 'network.listen', 'gpu.alloc', 'monitor.degraded', 'action', 'trial'];
  const i = order.indexOf(lane);
  return i === -1 ? order.length : i;
}
function color(e) {
  if (e.lane === 'action') return '#6a1b9a';
  if (e.lane === 'trial') return '#455a64';
  return { critical: '#b00020', high: '#e65100', medium: '#f9a825', low: '#1e88e5', info: '#78909c' }[e.severity] ?? '#607d8b';
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // ?since= resumes after the last record shown: nothing missed, nothing twice. The token goes
  // as a subprotocol (base64url), so it is in no URL, history or server log
  const url = `${proto}//${location.host}/stream?hello=1&since=${lastSeq + 1}`;
  const b64 = btoa(String.fromCharCode(...new TextEncoder().encode(token))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const sock = new WebSocket(url, ['redline', `redline.token.${b64}`]);
  ws = sock;
  let wasOpen = false;
  sock.addEventListener('open', () => {
    wasOpen = true;
    opened = true;
    retryMs = 250;
    $('conn').textContent = 'live';
    $('login').hidden = true;
    $('app').hidden = false;
  });
  sock.addEventListener('message', (ev) => {
    let r;
    try {
      r = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (r.kind === 'hello') {
      state.operator = r.operator ? r.who : null;
      $('controls').hidden = !r.operator;
      $('operator-name').textContent = r.operator ? `operating as ${r.who}:` : '';
      return;
    }
    if (r.kind === 'heartbeat' || r.kind === 'pong') {
      state.head = r.head;
      schedule();
      return;
    }
    if (r.kind === 'control-result') {
      $('control-result').textContent = r.ok ? `${r.action ?? 'done'}: ok` : `refused: ${r.error}`;
      return;
    }
    if (typeof r.seq !== 'number' || r.seq <= lastSeq) return;
    lastSeq = r.seq;
    apply(r);
    schedule();
  });
  sock.addEventListener('close', () => {
    if (ws !== sock) return;
    $('conn').textContent = 'reconnecting…';
    if (!wasOpen && !opened) {
      // refused before it ever opened: the token is wrong (or the daemon is not there)
      token = null;
      showLogin('The daemon refused that token.');
      return;
    }
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  });
}

function showLogin(message) {
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message ?? '';
  $('conn').textContent = 'not connected';
}

function operate(button) {
  const cmd = button.dataset.cmd;
  const mode = button.dataset.mode;
  const what = cmd === 'mode' ? `switch the daemon to ${mode} mode` : `${cmd} the subject`;
  if (!window.confirm(`Really ${what}?`)) return;
  ws?.send(JSON.stringify({ type: 'control', id: nextId++, cmd, ...(mode ? { mode } : {}) }));
}

function start(t) {
  token = t;
  connect();
}

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('#controls button')) b.addEventListener('click', () => operate(b));
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value;
    $('token').value = '';
    start(t);
  });
  const here = new URL(location.href);
  const given = here.searchParams.get('token');
  if (given) {
    // out of the address bar (and history) before anything else
    here.searchParams.delete('token');
    history.replaceState(null, '', here.pathname + here.search + here.hash);
    start(given);
  } else showLogin();
});
