// greenlight's status page: vanilla JavaScript, no build step, no third-party code.
// Data: GET /api/v1/overview (polled, and again at once after an event that changes it) and the
// WebSocket /api/v1/stream (events live; while it is down, GET /api/v1/events fills the gap).
// Every text from the agent goes in with textContent: probe details can quote a target's body.
'use strict';

const POLL_MS = 2000;
const RECONNECT_MS = 3000;
const EVENTS_KEPT = 500;
const SAMPLES = 30;
const TOKEN_KEY = 'greenlight.token';

const $ = (id) => document.getElementById(id);
const page = {
  overview: null,
  events: [],
  lastId: 0,
  socket: null,
  streamUp: false,
  /** The journal answered 401: api.streamToken is set and the page has no token it takes. */
  historyLocked: false,
  token: '',
  pending: null,
  rulesKey: '',
  flagsKey: '',
  alertsKey: '',
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function ms(value) {
  if (value === null || value === undefined) return '–';
  return value >= 1000 ? `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)} s` : `${Math.round(value)} ms`;
}

function percent(ratio) {
  return ratio === null || ratio === undefined ? '–' : `${(ratio * 100).toFixed(ratio > 0 && ratio < 0.1 ? 1 : 0)} %`;
}

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour12: false });
}

/** A latency sparkline: the line of durations, failed probes as red dots on the baseline. */
function sparkline(recent) {
  const width = 120;
  const height = 28;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'spark', role: 'img', 'aria-label': `latest ${recent.durationMs.length} latencies` });
  const values = recent.durationMs;
  if (values.length === 0) return chart;
  const max = Math.max(...values, 1);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const y = (v) => (height - 2 - (v / max) * (height - 4)).toFixed(1);
  chart.append(svg('polyline', { points: values.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(' '), class: 'spark-line' }));
  for (const i of recent.failed) chart.append(svg('circle', { cx: (i * step).toFixed(1), cy: height - 2, r: 2, class: 'spark-fail' }));
  const title = svg('title', {});
  title.textContent = `latest ${ms(values.at(-1))}, max ${ms(max)} over ${values.length} probes`;
  chart.append(title);
  return chart;
}

function renderEnvironments(overview) {
  const root = $('environments');
  const cards = Object.entries(overview.environments).map(([name, env]) => {
    const series = overview.series.filter((s) => s.env === name);
    const failing = series.filter((s) => s.up === false).length;
    const health = env.up === undefined || env.up === null ? 'unknown' : failing > 0 ? `${failing} of ${series.length} probes failing` : 'all probes pass';
    const card = el(
      'article',
      { class: `env${env.active ? ' live' : ''}${failing > 0 ? ' failing' : ''}`, 'data-env': name, 'data-live': env.active ? 'true' : 'false' },
      el(
        'header',
        {},
        el('h3', { text: name }),
        env.active ? el('span', { class: 'badge live-badge', text: 'LIVE' }) : el('span', { class: 'badge idle-badge', text: 'idle' }),
      ),
      el('p', { class: 'url', text: env.url }),
      el('p', { class: `health ${failing > 0 ? 'bad' : env.up ? 'good' : ''}`, text: health }),
    );
    const list = el('ul', { class: 'probes' });
    for (const s of series) {
      const state = s.up === undefined || s.up === null ? 'unknown' : s.up ? 'up' : 'down';
      list.append(
        el(
          'li',
          { class: `probe ${state}`, 'data-probe': s.probe, 'data-state': state },
          el('span', { class: 'dot', title: state }),
          el('span', { class: 'probe-name', text: s.probe }),
          sparkline(s.recent),
          el('span', { class: 'figures', text: `${ms(s.recent.durationMs.at(-1))} · p95 ${ms(s.p95LatencyMs)} · err ${percent(s.errorRatio)} (${s.window})` }),
          s.failure ? el('span', { class: 'failure', text: `${s.consecutiveFailures}× ${s.failure}` }) : null,
        ),
      );
    }
    card.append(list);
    return card;
  });
  root.replaceChildren(...cards);
}

function renderRules(overview) {
  const body = $('rules').tBodies[0];
  const rows = overview.rules.map((rule) =>
    el(
      'tr',
      { class: `rule ${rule.state}`, 'data-rule': rule.rule },
      el('td', { text: rule.rule }),
      el('td', { class: `sev ${rule.severity}`, text: rule.severity }),
      el('td', {}, el('span', { class: `state ${rule.state}`, text: rule.state })),
      el('td', { text: rule.since ? clock(rule.since) : '' }),
      el('td', { text: rule.incident ? `#${rule.incident}` : '' }),
    ),
  );
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 5, class: 'hint', text: 'no rules configured' })));
  body.replaceChildren(...rows);
}

/** Incidents, silences, maintenance windows and muted alerts: what the alert lifecycle holds now. */
function renderAlerts(overview) {
  const alerts = overview.alerts;
  if (!alerts) return;
  const windows = alerts.maintenance.open.map((w) =>
    el(
      'p',
      { class: `badge ${w.muting ? 'warn' : ''}`, 'data-maintenance': w.env },
      el('span', {
        text: `${w.env} in maintenance until ${clock(w.endsAt)}${w.name ? ` (${w.name})` : ''}: ${w.reason}${w.muting ? ' — its notifications are muted' : ' — live, so nothing is muted'}`,
      }),
    ),
  );
  $('maintenance').replaceChildren(...windows);
  const incidents = alerts.incidents.filter((i) => i.state !== 'resolved');
  const rows = incidents.map((i) =>
    el(
      'tr',
      { class: `incident ${i.state}`, 'data-incident': i.id },
      el('td', { text: i.id }),
      el('td', { text: i.env }),
      el('td', { class: `sev ${i.severity}`, text: i.severity }),
      el('td', {}, el('span', { class: `state ${i.state}`, text: i.state })),
      el('td', { text: clock(i.startedAt) }),
      el('td', { text: i.policy ? String(i.escalationLevel) : '' }),
      el('td', { text: i.acknowledgedBy ?? '' }),
    ),
  );
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 7, class: 'hint', text: 'no open incidents' })));
  $('incidents').tBodies[0].replaceChildren(...rows);
  const matcher = (m) => `${m.name}${m.isEqual === false ? '!' : '='}${m.isRegex ? '~' : ''}"${m.value}"`;
  const silences = alerts.silences.map((s) =>
    el(
      'tr',
      { class: `silence ${s.status.state}`, 'data-silence': s.id },
      el('td', { text: s.matchers.map(matcher).join(', ') }),
      el('td', {}, el('span', { class: `state ${s.status.state}`, text: s.status.state })),
      el('td', { text: `${new Date(s.endsAt).toLocaleString([], { hour12: false })}` }),
      el('td', { text: s.createdBy }),
      el('td', { text: s.comment }),
    ),
  );
  if (silences.length === 0) silences.push(el('tr', {}, el('td', { colspan: 5, class: 'hint', text: 'no silences' })));
  $('silences').tBodies[0].replaceChildren(...silences);
  $('muted').textContent =
    alerts.muted.length === 0 ? '' : `muted now: ${alerts.muted.map((m) => `${m.rule}${m.env ? ` on ${m.env}` : ''} (${m.reason.by})`).join(', ')}`;
}

function renderFlags(overview) {
  const table = $('flags');
  const envs = Object.keys(overview.flags);
  table.tHead.replaceChildren(
    el('tr', {}, el('th', { text: 'flag' }), ...envs.map((env) => el('th', { text: env === overview.activeEnvironment ? `${env} (live)` : env }))),
  );
  const names = [...new Set(envs.flatMap((env) => Object.keys(overview.flags[env])))];
  const rows = names.map((flag) => {
    const locked = overview.locked.includes(flag);
    return el(
      'tr',
      { 'data-flag': flag, class: locked ? 'locked' : '' },
      el(
        'th',
        { scope: 'row' },
        el('span', { text: flag }),
        locked ? el('span', { class: 'lock', title: 'locked: can never be changed', text: 'locked' }) : null,
      ),
      ...envs.map((env) => {
        const on = overview.flags[env][flag] === true;
        const button = el(
          'button',
          {
            type: 'button',
            class: `flag-toggle ${on ? 'on' : 'off'}`,
            'data-flag': flag,
            'data-env': env,
            'data-value': String(!on),
            disabled: locked || !page.token,
            title: locked ? 'locked' : `turn ${on ? 'off' : 'on'} in ${env}`,
          },
          on ? 'on' : 'off',
        );
        return el('td', {}, button);
      }),
    );
  });
  table.tBodies[0].replaceChildren(...rows);
}

/** Who leads and who is there: one line, shown only when several agents share one database. */
function renderCluster(cluster) {
  const line = $('cluster');
  line.hidden = !cluster || cluster.members.length < 2;
  if (line.hidden) return;
  const members = cluster.members.map((m) => `${m.name}${m.name === cluster.leader ? ' (leader)' : ''}${m.name === cluster.self ? ' (this one)' : ''}`);
  line.textContent = `cluster: ${cluster.leader ? `${cluster.leader} leads, epoch ${cluster.epoch}` : 'no leader right now'} · ${members.join(', ')}`;
  line.dataset.state = cluster.leader ? 'ok' : 'down';
}

function render() {
  const overview = page.overview;
  if (!overview) return;
  $('live-env').textContent = overview.activeEnvironment;
  $('live-env').dataset.env = overview.activeEnvironment;
  $('version').textContent = `v${overview.version}${overview.traffic.switching ? ' · switching…' : ''}`;
  $('dry-run').hidden = !overview.dryRun;
  renderCluster(overview.cluster);
  document.title = `greenlight · ${overview.activeEnvironment} live`;
  renderEnvironments(overview);
  // Rules and flags change rarely: rebuild them only when they did (buttons keep focus and hover).
  const rulesKey = JSON.stringify(overview.rules);
  if (rulesKey !== page.rulesKey) renderRules(overview);
  page.rulesKey = rulesKey;
  const alertsKey = JSON.stringify(overview.alerts ?? null);
  if (alertsKey !== page.alertsKey) renderAlerts(overview);
  page.alertsKey = alertsKey;
  const flagsKey = JSON.stringify([overview.flags, overview.activeEnvironment, page.token !== '']);
  if (flagsKey !== page.flagsKey) renderFlags(overview);
  page.flagsKey = flagsKey;
  const envFilter = $('filter-env');
  const envs = Object.keys(overview.environments);
  if (envFilter.options.length !== envs.length + 1) {
    const chosen = envFilter.value;
    envFilter.replaceChildren(el('option', { value: '', text: 'all' }), ...envs.map((env) => el('option', { text: env })));
    envFilter.value = chosen;
  }
}

async function refresh() {
  try {
    const response = await fetch(`/api/v1/overview?samples=${SAMPLES}`, { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    page.overview = await response.json();
    render();
    if (!page.streamUp) setPolling();
  } catch (error) {
    setConnection('down', `agent unreachable (${error.message})`);
  }
}

/** Refresh soon after an event that changes what the page shows; several events, one fetch. */
function refreshSoon() {
  if (page.pending) return;
  page.pending = setTimeout(() => {
    page.pending = null;
    refresh();
  }, 150);
}

function setPolling() {
  if (page.historyLocked) setConnection('locked', 'events need a token (api.streamToken): enter one below');
  else setConnection('polling', 'stream down: polling');
}

function setConnection(state, text) {
  const node = $('connection');
  node.dataset.state = state;
  node.textContent = text;
}

// --- events --------------------------------------------------------------------------------

function filters() {
  return { type: $('filter-type').value, env: $('filter-env').value, severity: $('filter-severity').value };
}

function passes(event, f) {
  if (f.type && event.type !== f.type && !event.type.startsWith(`${f.type}.`)) return false;
  if (f.env && event.env !== f.env) return false;
  if (f.severity && event.severity !== f.severity) return false;
  return true;
}

function eventItem(event) {
  return el(
    'li',
    { class: `event ${event.severity}`, 'data-type': event.type, 'data-id': event.id },
    el('span', { class: 'event-time', text: clock(event.time) }),
    el('span', { class: 'event-type', text: event.type }),
    event.env ? el('span', { class: 'event-env', text: event.env }) : null,
    el('span', { class: 'event-message', text: event.message }),
  );
}

function renderEvents() {
  const f = filters();
  const shown = page.events
    .filter((event) => passes(event, f))
    .slice(-200)
    .reverse();
  $('events').replaceChildren(...(shown.length ? shown.map(eventItem) : [el('li', { class: 'hint', text: 'no events match' })]));
}

function addEvents(events) {
  let added = 0;
  let changes = false;
  const f = filters();
  const list = $('events');
  for (const event of events) {
    if (event.id <= page.lastId) continue;
    page.lastId = event.id;
    page.events.push(event);
    added++;
    if (!/^(alert\.sent|alert\.failed)$/.test(event.type)) changes = true;
    if (passes(event, f)) {
      if (list.firstElementChild?.classList.contains('hint')) list.replaceChildren();
      list.prepend(eventItem(event));
      while (list.children.length > 200) list.lastElementChild.remove();
    }
  }
  if (page.events.length > EVENTS_KEPT) page.events.splice(0, page.events.length - EVENTS_KEPT);
  if (added && changes) refreshSoon();
}

function connectStream() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream?since=${page.lastId}`);
  page.socket = socket;
  socket.addEventListener('open', () => {
    page.streamUp = true;
    page.retries = 0;
    setConnection('live', 'live');
  });
  socket.addEventListener('message', (message) => {
    try {
      addEvents([JSON.parse(message.data)]);
    } catch {
      // not an event; ignore
    }
  });
  socket.addEventListener('close', () => {
    page.streamUp = false;
    page.socket = null;
    setPolling();
    // Back off to 30 s when the stream keeps refusing (it may need an api.streamToken): the journal poll covers the gap.
    page.retries = (page.retries ?? 0) + 1;
    setTimeout(connectStream, Math.min(RECONNECT_MS * 2 ** (page.retries - 1), 30000));
  });
}

/**
 * While the stream is down (or needs a token: a browser cannot send one on a WebSocket), the
 * journal fills in, with the token typed below when there is one (api.streamToken, or the
 * admin or rollback token, reads the history).
 */
async function pollEvents() {
  if (page.streamUp) return;
  try {
    const headers = page.token ? { authorization: `Bearer ${page.token}` } : {};
    const response = await fetch(`/api/v1/events?since=${page.lastId}&limit=200`, { cache: 'no-store', headers });
    page.historyLocked = response.status === 401;
    if (response.ok) addEvents((await response.json()).events);
    setPolling();
  } catch {
    // the overview poll reports an unreachable agent
  }
}

// --- controls ------------------------------------------------------------------------------

function setToken(value) {
  page.token = value.trim();
  if ($('remember').checked && page.token) sessionStorage.setItem(TOKEN_KEY, page.token);
  else sessionStorage.removeItem(TOKEN_KEY);
  const usable = page.token !== '';
  $('rollback').disabled = !usable;
  $('emergency-flags').disabled = !usable;
  $('controls-hint').textContent = usable
    ? 'Each control asks for confirmation and a reason.'
    : 'Enter a token to use the controls. Each asks for confirmation and a reason.';
  if (page.overview) render();
}

function say(text, kind) {
  const node = $('message');
  node.textContent = text;
  node.dataset.kind = kind;
}

/** Ask for confirmation and a reason; resolves to the reason, or null when cancelled. */
function confirmAction(title, text) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-reason').value = '';
  return new Promise((resolve) => {
    const finish = (reason) => {
      $('confirm-form').removeEventListener('submit', onSubmit);
      $('confirm-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(reason);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const reason = $('confirm-reason').value.trim();
      if (!reason) {
        $('confirm-reason').focus();
        return;
      }
      finish(reason);
    };
    const onCancel = (event) => {
      event.preventDefault();
      finish(null);
    };
    $('confirm-form').addEventListener('submit', onSubmit);
    $('confirm-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    $('confirm-reason').focus();
  });
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    cache: 'no-store',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${page.token}` },
    body: JSON.stringify(body),
  });
  let payload = {};
  try {
    payload = await response.json();
  } catch {
    // no JSON body
  }
  return { status: response.status, payload };
}

async function control(title, text, run) {
  if (!page.token) {
    say('Enter a token first: the controls need ROLLBACK_TOKEN or ADMIN_TOKEN.', 'error');
    return;
  }
  const reason = await confirmAction(title, text);
  if (reason === null) {
    say('Cancelled.', 'info');
    return;
  }
  say('Working…', 'info');
  try {
    const { status, payload } = await run(reason);
    if (status >= 200 && status < 300 && payload.ok !== false) say(`✅ ${describe(payload)}`, 'ok');
    else
      say(
        `❌ HTTP ${status}${status === 401 ? ' (unauthorized)' : status === 403 ? ' (forbidden)' : ''}: ${payload.error ?? payload.detail ?? 'refused'}`,
        'error',
      );
  } catch (error) {
    say(`❌ ${error.message}`, 'error');
  }
  refresh();
}

function describe(payload) {
  if (payload.from && payload.to) return `rolled back ${payload.from} → ${payload.to}${payload.detail ? `: ${payload.detail}` : ''}`;
  if (payload.dryRun) return `dry run: ${payload.detail}`;
  if (Array.isArray(payload.changed)) return `${payload.changed.length} flag change(s) in ${(payload.envs ?? []).join(', ')}`;
  return 'done';
}

function wire() {
  $('token-form').addEventListener('submit', (event) => event.preventDefault());
  $('token').addEventListener('input', (event) => setToken(event.target.value));
  $('remember').addEventListener('change', () => setToken($('token').value));
  $('forget').addEventListener('click', () => {
    $('token').value = '';
    $('remember').checked = false;
    setToken('');
    say('Token forgotten.', 'info');
  });
  $('rollback').addEventListener('click', () => {
    const live = page.overview?.activeEnvironment ?? 'the live environment';
    const other = page.overview ? Object.keys(page.overview.environments).find((env) => env !== live) : 'the other one';
    control('Roll back?', `Switch live traffic from ${live} to ${other}. greenlight refuses if ${other}'s own probes are failing.`, (reason) =>
      call('POST', '/api/v1/rollback', { reason }),
    );
  });
  $('emergency-flags').addEventListener('click', () => {
    const live = page.overview?.activeEnvironment ?? 'the live environment';
    control('Emergency flags?', `Apply the emergency-rollback flag preset to ${live} (V3 off, V2 fallback on).`, (reason) =>
      call('POST', '/api/v1/flags/emergency-rollback', { reason }),
    );
  });
  $('flags').addEventListener('click', (event) => {
    const button = event.target.closest('button.flag-toggle');
    if (!button) return;
    const { flag, env, value } = button.dataset;
    control(`Turn ${flag} ${value === 'true' ? 'on' : 'off'}?`, `Set ${flag}=${value} in ${env} (needs the admin token).`, (reason) =>
      call('PUT', '/api/v1/flags', { set: { [flag]: value === 'true' }, env, reason }),
    );
  });
  for (const id of ['filter-type', 'filter-env', 'filter-severity']) $(id).addEventListener('change', renderEvents);
  const remembered = sessionStorage.getItem(TOKEN_KEY);
  if (remembered) {
    $('token').value = remembered;
    $('remember').checked = true;
  }
  setToken($('token').value);
}

async function start() {
  wire();
  await refresh();
  if (page.overview) page.lastId = page.overview.replayFrom;
  renderEvents();
  connectStream();
  setInterval(() => {
    if (document.hidden) return;
    refresh();
    pollEvents();
  }, POLL_MS);
}

start();
