// The hookhost dashboard: plain JavaScript over the admin API (docs/dashboard.md).
// No framework and no build step; every element is made with the DOM API, so no
// event field is ever parsed as HTML, and the page needs no inline script or style.

const TOKEN_KEY = 'hookhost-admin-token';
const SVG = 'http://www.w3.org/2000/svg';
const TEXT_PREVIEW = 64 * 1024; // characters of a text body shown
const HEX_PREVIEW = 4096; // bytes of a binary body shown

const $ = (selector) => document.querySelector(selector);

/** An element with attributes/properties and children (strings become text). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

// ---- the admin API ----

class Unauthorized extends Error {}

/** fetch on the admin API: the token (if any) as a bearer header, JSON back. */
async function api(path, { method = 'GET' } = {}) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, cache: 'no-store', credentials: 'omit' });
  if (response.status === 401) throw new Unauthorized('the admin token is missing or wrong');
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${method} ${path}: ${response.status}`);
  return body;
}

function showLogin(message) {
  document.querySelectorAll('.page').forEach((page) => (page.hidden = true));
  $('#login').hidden = false;
  $('#logout').hidden = true;
  $('#login-error').textContent = message || '';
  $('#token').focus();
}

async function login(event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('#token').value);
  $('#token').value = '';
  try {
    await api('/plugins');
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(err instanceof Unauthorized ? 'That token was refused.' : err.message);
    return;
  }
  $('#login').hidden = true;
  route();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin('');
}

// ---- formatting ----

const time = (text) => (text ? new Date(text).toLocaleString() : '');
const number = (n, digits = 1) =>
  n === null || n === undefined ? '–' : Number(n.toFixed(digits)).toLocaleString();

function ago(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  if (seconds < 60) return `${number(seconds, 0)} s`;
  if (seconds < 3600) return `${number(seconds / 60)} min`;
  return `${number(seconds / 3600)} h`;
}

/** A body as the admin API gives it: JSON pretty-printed, binary as hex, truncated. */
export function bodyPreview(request) {
  if (request.body_base64 !== null && request.body_base64 !== undefined) {
    const bytes = Uint8Array.from(atob(request.body_base64), (c) => c.charCodeAt(0));
    const shown = bytes.subarray(0, HEX_PREVIEW);
    const lines = [];
    for (let at = 0; at < shown.length; at += 16) {
      const row = Array.from(shown.subarray(at, at + 16), (b) => b.toString(16).padStart(2, '0'));
      lines.push(`${at.toString(16).padStart(8, '0')}  ${row.join(' ')}`);
    }
    return { kind: 'binary, hex', text: lines.join('\n'), more: bytes.length - shown.length };
  }
  const text = request.body || '';
  try {
    const pretty = JSON.stringify(JSON.parse(text), null, 2);
    return cut('JSON', pretty);
  } catch {
    return cut('text', text);
  }
}

function cut(kind, text) {
  const more = Math.max(0, text.length - TEXT_PREVIEW);
  return { kind, text: text.slice(0, TEXT_PREVIEW), more, unit: 'characters' };
}

// ---- overview: charts from GET /stats ----

/** A line chart of one or two series (null = no point) with its last value. */
function chart(title, lines, format) {
  const width = 300;
  const height = 70;
  const values = lines.flatMap((line) => line.values).filter((v) => v !== null);
  const max = Math.max(1e-9, ...values);
  const plot = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img' });
  plot.append(svg('line', { class: 'grid', x1: 0, y1: height - 1, x2: width, y2: height - 1 }));
  lines.forEach((line, index) => {
    const n = line.values.length;
    let path = '';
    let pen = 'M';
    line.values.forEach((value, i) => {
      if (value === null) {
        pen = 'M';
        return;
      }
      const x = (i / Math.max(1, n - 1)) * width;
      const y = height - 4 - (value / max) * (height - 14);
      path += `${pen}${x.toFixed(1)},${y.toFixed(1)} `;
      pen = 'L';
    });
    if (path) plot.append(svg('path', { class: index ? 'line second' : 'line', d: path }));
    // The newest point as a dot: a route that just started has only one.
    const lastIndex = line.values.map((v) => v !== null).lastIndexOf(true);
    if (lastIndex >= 0) {
      const x = (lastIndex / Math.max(1, n - 1)) * width;
      const y = height - 4 - (line.values[lastIndex] / max) * (height - 14);
      plot.append(svg('circle', { class: index ? 'dot second' : 'dot', cx: x.toFixed(1), cy: y.toFixed(1), r: 2.5 }));
    }
  });
  plot.append(svg('text', { class: 'axis', x: 2, y: 9 }, `max ${format(max)}`));
  const last = lines.map((line) => {
    const value = [...line.values].reverse().find((v) => v !== null);
    return `${line.name ? `${line.name} ` : ''}${value === undefined ? '–' : format(value)}`;
  });
  return el('figure', { class: 'chart', 'data-chart': title },
    el('figcaption', {}, el('span', {}, title), el('b', {}, last.join(' · '))),
    plot,
    el('figcaption', {}, el('span', {}, '−60 min'), el('span', {}, 'now')));
}

async function overview() {
  const stats = await api('/stats');
  const container = $('#routes');
  const seconds = stats.bucket_seconds;
  const cards = stats.routes.map((route) => {
    const rate = route.requests.map((n) => n / seconds);
    const errors = route.requests.map((n, i) => (n ? (100 * route.errors[i]) / n : null));
    const charts = [
      chart('requests/s', [{ values: rate }], (v) => number(v, 2)),
      chart('error rate', [{ values: errors }], (v) => `${number(v)} %`),
      chart('latency', [
        { name: 'p50', values: route.p50_ms },
        { name: 'p99', values: route.p99_ms },
      ], (v) => `${number(v, 2)} ms`),
    ];
    if (route.mode === 'queue') {
      charts.push(
        chart('queue depth', [{ values: route.queue_depth }], (v) => number(v, 0)),
        chart('oldest pending', [{ values: route.oldest_pending_age_seconds }], ago),
      );
    }
    const total = route.requests.reduce((a, b) => a + b, 0);
    return el('div', { class: 'route', 'data-route': route.route },
      el('h3', {}, route.route, ' ', el('span', { class: 'muted' },
        `${route.plugin} · ${route.mode} · ${total} requests in the hour`)),
      el('div', { class: 'charts' }, charts));
  });
  container.replaceChildren(...(cards.length ? cards : [el('p', { class: 'muted' }, 'No plugin is serving.')]));
}

// ---- plugins: GET /plugins ----

function settings(plugin) {
  const list = el('dl', { class: 'settings' });
  const s = plugin.settings || {};
  const mib = (n) => `${number(n / (1024 * 1024))} MiB`;
  const rows = [
    ['timeout', s.timeout_ms !== undefined ? `${s.timeout_ms} ms` : null],
    ['memory', s.memory_bytes !== undefined ? mib(s.memory_bytes) : null],
    ['max body', s.max_body_bytes ? mib(s.max_body_bytes) : 'host limit'],
    ['deliveries per instance', s.max_deliveries],
    ['queue concurrency', s.concurrency],
    ['max attempts', s.max_attempts],
  ];
  for (const [name, value] of rows) {
    if (value !== undefined && value !== null) list.append(el('dt', {}, name), el('dd', {}, String(value)));
  }
  return list;
}

async function plugins() {
  const { plugins: list } = await api('/plugins');
  const rows = list.map((plugin) => {
    const error = plugin.last_error;
    const deliveries = plugin.deliveries
      ? Object.entries(plugin.deliveries).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ')
      : '';
    return el('tr', { 'data-plugin': plugin.name },
      el('td', {}, el('b', {}, plugin.name), plugin.serving ? '' : el('div', { class: 'error' }, 'not serving')),
      el('td', {}, el('code', {}, plugin.route || '')),
      el('td', {}, plugin.mode || ''),
      el('td', {}, plugin.scheme || (plugin.serving ? 'none' : '')),
      el('td', {}, el('code', { title: plugin.sha256 || '' }, (plugin.sha256 || '').slice(0, 12))),
      el('td', {}, time(plugin.loaded_at)),
      el('td', {}, deliveries),
      el('td', { class: 'load-error' }, error
        ? [el('code', {}, error.file), el('div', { class: 'error' }, error.reason), el('div', { class: 'muted' }, time(error.at))]
        : ''),
      el('td', {}, plugin.serving ? settings(plugin) : ''));
  });
  $('#plugin-table tbody').replaceChildren(...rows);
}

// ---- events: GET /events, GET /events/{id}, replays ----

let eventsTimer = null;

function filterValues() {
  const form = new FormData($('#filter'));
  const value = (name) => (form.get(name) || '').trim();
  const iso = (name) => (value(name) ? new Date(value(name)).toISOString() : '');
  return { route: value('route'), status: value('status'), since: iso('since'), until: iso('until'), id: value('id') };
}

async function fillRoutes() {
  const select = $('#filter select[name=route]');
  const { plugins: list } = await api('/plugins');
  const chosen = select.value;
  const routes = [...new Set(list.filter((p) => p.route).map((p) => p.route))].sort();
  select.replaceChildren(el('option', { value: '' }, 'any'), ...routes.map((r) => el('option', { value: r }, r)));
  select.value = routes.includes(chosen) ? chosen : '';
  $('#replay-dead').disabled = !select.value;
}

function eventRow(event) {
  const replayable = event.status === 'dead' || event.status === 'done';
  return el('tr', { 'data-id': event.id, 'data-route': event.route },
    el('td', {}, el('a', { href: '#', onclick: (e) => { e.preventDefault(); detail(event.id, event.route); } },
      el('code', {}, event.id))),
    el('td', {}, el('code', {}, event.route)),
    el('td', { class: `status status-${event.status}` }, event.status),
    el('td', {}, String(event.attempts)),
    el('td', {}, time(event.received_at)),
    el('td', { class: 'error' }, event.last_error || ''),
    el('td', {}, replayable
      ? el('button', { class: 'replay', type: 'button', onclick: () => replay(event.id, event.route) }, 'Replay')
      : ''));
}

async function events() {
  await fillRoutes();
  const filter = filterValues();
  let list;
  if (filter.id) {
    const query = filter.route ? `?route=${encodeURIComponent(filter.route)}` : '';
    try {
      list = [await api(`/events/${encodeURIComponent(filter.id)}${query}`)];
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      list = [];
    }
  } else {
    const params = new URLSearchParams();
    for (const name of ['route', 'status', 'since', 'until']) if (filter[name]) params.set(name, filter[name]);
    params.set('limit', '200');
    list = (await api(`/events?${params}`)).events;
  }
  $('#event-table tbody').replaceChildren(...list.map(eventRow));
  $('#events-note').textContent = list.length ? `${list.length} event(s)` : 'No event matches.';
}

async function detail(id, route) {
  const box = $('#event-detail');
  const event = await api(`/events/${encodeURIComponent(id)}?route=${encodeURIComponent(route)}`);
  const request = event.request || { headers: [] };
  const preview = bodyPreview(request);
  const attempts = event.attempt_log && event.attempt_log.length
    ? el('table', { class: 'attempts' },
      el('thead', {}, el('tr', {}, el('th', {}, 'attempt'), el('th', {}, 'at'), el('th', {}, 'outcome'), el('th', {}, 'error'))),
      el('tbody', {}, event.attempt_log.map((a) => el('tr', {},
        el('td', {}, `${a.attempt}${a.replay ? ` (replay ${a.replay})` : ''}`), el('td', {}, time(a.at)),
        el('td', { class: `status status-${a.outcome === 'ok' ? 'done' : 'dead'}` }, a.outcome),
        el('td', { class: 'error' }, a.error || '')))))
    : el('p', { class: 'muted' }, event.attempts ? `${event.attempts} attempt(s); last error: ${event.last_error || 'none'}` : 'Not attempted yet.');
  box.replaceChildren(
    el('h3', {}, 'Event ', el('code', {}, event.id)),
    el('dl', {},
      el('dt', {}, 'route'), el('dd', {}, event.route),
      el('dt', {}, 'status'), el('dd', { class: `status status-${event.status}` }, event.status),
      el('dt', {}, 'received'), el('dd', {}, time(event.received_at)),
      el('dt', {}, 'replays'), el('dd', {}, String(event.replays)),
      el('dt', {}, 'request'), el('dd', {}, `${request.method || ''} ${request.path || ''}${request.query ? `?${request.query}` : ''}`),
      el('dt', {}, 'verified by'), el('dd', {}, request.verified_by || 'none')),
    el('h4', {}, 'Attempts'), attempts,
    el('h4', {}, 'Headers ', el('span', { class: 'muted' }, '(secrets redacted by the host)')),
    el('table', { class: 'headers' }, el('tbody', {}, request.headers.map(([name, value]) =>
      el('tr', {}, el('td', {}, el('code', {}, name)), el('td', {}, el('code', {}, value)))))),
    el('h4', {}, 'Body ', el('span', { class: 'muted' }, `${preview.kind}, ${request.body_len ?? 0} bytes`)),
    el('pre', { class: 'body' }, preview.text),
    preview.more ? el('p', { class: 'muted' }, `… ${preview.more} more ${preview.unit || 'bytes'} not shown`) : '',
    (event.status === 'dead' || event.status === 'done')
      ? el('button', { class: 'replay primary', type: 'button', onclick: () => replay(event.id, event.route) }, 'Replay this event')
      : '');
  box.hidden = false;
  document.querySelectorAll('#event-table tr.selected').forEach((tr) => tr.classList.remove('selected'));
  const row = document.querySelector(`#event-table tr[data-id="${CSS.escape(id)}"]`);
  if (row) row.classList.add('selected');
}

/** After a replay: list again every second for half a minute, to show the outcome. */
function watchEvents() {
  clearInterval(eventsTimer);
  let left = 30;
  eventsTimer = setInterval(() => {
    if (--left <= 0 || location.hash !== '#events') clearInterval(eventsTimer);
    events().catch(report);
  }, 1000);
}

async function replay(id, route) {
  await api(`/events/${encodeURIComponent(id)}/replay?route=${encodeURIComponent(route)}`, { method: 'POST' });
  $('#action-note').textContent = `Event ${id} replayed: pending again.`;
  await events();
  watchEvents();
}

async function askReplayDead() {
  const { route } = filterValues();
  if (!route) return;
  const { events: dead } = await api(`/events?status=dead&route=${encodeURIComponent(route)}&limit=1000`);
  const count = dead.length === 1000 ? 'at least 1000' : String(dead.length);
  $('#confirm-text').textContent = `Replay ${count} dead event(s) of ${route}? Each is delivered again.`;
  $('#confirm').hidden = false;
  $('#confirm-yes').disabled = dead.length === 0;
}

async function replayDead() {
  const { route } = filterValues();
  $('#confirm').hidden = true;
  const answer = await api(`/events/replay?status=dead&route=${encodeURIComponent(route)}`, { method: 'POST' });
  $('#action-note').textContent = `Replayed ${answer.replayed} dead event(s) of ${route}.`;
  await events();
  watchEvents();
}

// ---- pages and refresh ----

const PAGES = { overview, plugins, events };
let refreshTimer = null;

function report(err) {
  if (err instanceof Unauthorized) {
    showLogin(sessionStorage.getItem(TOKEN_KEY) ? 'The token was refused.' : '');
    return;
  }
  $('#live').textContent = `error: ${err.message}`;
}

async function refresh() {
  const name = (location.hash || '#overview').slice(1);
  const page = PAGES[name] ? name : 'overview';
  await PAGES[page]();
  $('#live').textContent = `updated ${new Date().toLocaleTimeString()}`;
  $('#logout').hidden = !sessionStorage.getItem(TOKEN_KEY);
}

function route() {
  const name = (location.hash || '#overview').slice(1);
  const page = PAGES[name] ? name : 'overview';
  if (!$('#login').hidden) return;
  document.querySelectorAll('.page').forEach((section) => (section.hidden = section.id !== page));
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.page === page));
  clearInterval(refreshTimer);
  refresh().catch(report);
  // Live: the series move every ten seconds; events and plugins are cheap to list.
  refreshTimer = setInterval(() => refresh().catch(report), page === 'overview' ? 10000 : 5000);
}

async function start() {
  $('#login-form').addEventListener('submit', login);
  $('#logout').addEventListener('click', logout);
  $('#filter').addEventListener('submit', (e) => { e.preventDefault(); events().catch(report); });
  $('#filter select[name=route]').addEventListener('change', (e) => { $('#replay-dead').disabled = !e.target.value; });
  $('#replay-dead').addEventListener('click', () => askReplayDead().catch(report));
  $('#confirm-yes').addEventListener('click', () => replayDead().catch(report));
  $('#confirm-no').addEventListener('click', () => { $('#confirm').hidden = true; });
  window.addEventListener('hashchange', route);
  try {
    await api('/healthz');
  } catch (err) {
    report(err);
    return;
  }
  route();
}

start();
