// cors-proxy demo page: a few fetch() calls from this origin to the proxy, and what the
// page's script can see of each. No framework, no network access except to the proxy
// (and explain.json, next to this file).
'use strict';

const params = new URLSearchParams(location.search);
// `?proxy=http://127.0.0.1:PORT` points the page at another proxy.
const PROXY = (params.get('proxy') || 'http://127.0.0.1:8080').replace(/\/$/, '');
// The same proxy for WebSocket (ws://, or wss:// for an https:// proxy).
const PROXY_WS = PROXY.replace(/^http/, 'ws');

// id, what is called, what should happen and why. `expect`: 'ok' (2xx readable),
// 'blocked' (the browser refuses the response: TypeError), or a status the script can read.
const SCENARIOS = [
  {
    id: 'allowed',
    title: 'Allowed GET',
    path: '/api/items',
    init: {},
    code: "fetch('PROXY/api/items')",
    expect: 'ok',
    why: 'This origin is in <code>allow_origin</code> of route <code>/api/</code>. The API also sends ' +
      '<code>X-Internal-Trace</code>, which is not in <code>expose_headers</code>: the script cannot read it.',
    probe: ['X-Request-Id', 'X-Internal-Trace'],
  },
  {
    id: 'denied',
    title: 'Denied origin',
    path: '/api/admin/users',
    init: {},
    code: "fetch('PROXY/api/admin/users')",
    expect: 'blocked',
    why: 'Route <code>/api/admin/</code> only allows <code>https://admin.example.com</code>. The proxy answers 403 ' +
      'with no CORS header and the API never sees the request; the script only gets a <code>TypeError</code>.',
  },
  {
    id: 'preflight',
    title: 'Preflighted PUT with a custom header',
    path: '/api/items/1',
    init: {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'cors-proxy-demo' },
      body: JSON.stringify({ name: 'apple', price: 4 }),
    },
    code: "fetch('PROXY/api/items/1', {\n  method: 'PUT',\n" +
      "  headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'cors-proxy-demo' },\n" +
      "  body: JSON.stringify({ name: 'apple', price: 4 }),\n})",
    expect: 'ok',
    why: 'A PUT with <code>X-Requested-With</code> is not "simple": the browser first sends an <code>OPTIONS</code> ' +
      'preflight, which the proxy answers itself (it is never forwarded), then the PUT.',
  },
  {
    id: 'credentials',
    title: "Credentialed call (credentials: 'include')",
    path: '/api/me',
    init: { credentials: 'include' },
    code: "fetch('PROXY/api/me', { credentials: 'include' })",
    expect: 'ok',
    why: 'The page set a cookie for 127.0.0.1; the browser sends it because the route has ' +
      '<code>allow_credentials on</code> and answers with this exact origin (never <code>*</code>).',
  },
  {
    id: 'wildcard',
    title: 'Credentials on a public route',
    path: '/api/public/items',
    init: { credentials: 'include' },
    code: "fetch('PROXY/api/public/items', { credentials: 'include' })",
    expect: 'blocked',
    why: 'Route <code>/api/public/</code> is <code>allow_origin *</code> without credentials: fine for plain ' +
      'calls, but a browser refuses <code>Access-Control-Allow-Origin: *</code> for a credentialed one.',
  },
  {
    id: 'bad-gateway',
    title: 'Proxy-made 502',
    path: '/api/legacy/reports',
    init: {},
    code: "fetch('PROXY/api/legacy/reports')",
    expect: 502,
    why: 'The <code>legacy</code> upstream (127.0.0.1:3999) is not running. The proxy\'s own 502 carries the ' +
      'CORS headers, so the script reads the real status instead of an opaque network error.',
  },
  // WebSocket cards (`socket`: the path opened with new WebSocket()). `expect`: 'echo' (opens, the
  // API echoes the message) or 'refused' (never opens: onclose with 1006).
  {
    id: 'ws-allowed',
    title: 'WebSocket from this origin',
    socket: '/api/ws/echo',
    code: "const ws = new WebSocket('PROXY/api/ws/echo');\nws.onopen = () => ws.send('hello');",
    expect: 'echo',
    why: 'Browsers apply no CORS to WebSocket, so the proxy checks the handshake\'s <code>Origin</code> itself, ' +
      'against <code>allow_origin</code> of route <code>/api/</code>: this origin is listed, so the handshake is ' +
      'tunnelled to the API, which echoes the message.',
  },
  {
    id: 'ws-denied',
    title: 'WebSocket hijacking, stopped',
    socket: '/api/admin/ws/echo',
    code: "new WebSocket('PROXY/api/admin/ws/echo')",
    expect: 'refused',
    why: 'Any page may open a socket to any host, and the browser sends the user\'s cookies with it. Route ' +
      '<code>/api/admin/</code> only allows <code>https://admin.example.com</code>: the proxy refuses the ' +
      'handshake (403) and the API never sees it; the page only gets <code>onclose</code> with code 1006.',
  },
];

let explanations = {};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'html') node.innerHTML = v;
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function describeCall(s) {
  return s.code.replace('PROXY', s.socket ? PROXY_WS : PROXY);
}

function buildCards() {
  const main = document.getElementById('scenarios');
  for (const s of SCENARIOS) {
    const expectText = {
      ok: 'allowed', blocked: 'blocked by the browser', echo: 'opens and echoes', refused: 'refused by the proxy',
    }[s.expect] || `status ${s.expect}`;
    const button = el('button', { type: 'button', class: 'run' }, 'Run');
    button.addEventListener('click', () => run(s));
    const card = el('section', { class: 'card', id: `card-${s.id}` },
      el('div', { class: 'card-head' },
        el('h2', {}, s.title),
        el('span', { class: 'expect' }, `expected: ${expectText}`),
        button),
      el('pre', { class: 'call' }, describeCall(s)),
      el('p', { class: 'why', html: s.why }),
      el('div', { class: 'result', id: `result-${s.id}` }, el('p', { class: 'idle' }, 'not run yet')));
    main.append(card);
  }
}

// A WebSocket card: open, send one message, close on its echo; what the page's script saw, in order.
function openSocket(s) {
  return new Promise((resolve) => {
    const outcome = { kind: 'socket', opened: false, events: [] };
    const ws = new WebSocket(PROXY_WS + s.socket);
    const timer = setTimeout(() => { outcome.events.push('(no close after 5 s: closing)'); ws.close(); }, 5000);
    ws.onopen = () => {
      outcome.opened = true;
      outcome.events.push('open');
      ws.send('hello from ' + location.origin);
    };
    ws.onmessage = (event) => {
      outcome.events.push(`message: ${event.data}`);
      outcome.echoed = true;
      ws.close(1000, 'done');
    };
    ws.onerror = () => outcome.events.push('error');
    ws.onclose = (event) => {
      clearTimeout(timer);
      outcome.code = event.code;
      outcome.events.push(`close: code ${event.code}${event.code === 1006 ? ' (abnormal: no close frame)' : ''}` +
        (event.reason ? `, reason "${event.reason}"` : ''));
      resolve(outcome);
    };
  });
}

async function run(s) {
  const box = document.getElementById(`result-${s.id}`);
  box.replaceChildren(el('p', { class: 'idle' }, 'running…'));
  const started = performance.now();
  let outcome;
  if (s.socket) {
    outcome = await openSocket(s);
    outcome.ms = Math.round(performance.now() - started);
    render(s, box, outcome);
    return outcome;
  }
  try {
    const response = await fetch(PROXY + s.path, s.init);
    const headers = [...response.headers];
    const probes = (s.probe || []).map((name) => [name, response.headers.get(name)]);
    const body = await response.text();
    outcome = { kind: 'response', status: response.status, statusText: response.statusText, headers, probes, body };
  } catch (error) {
    outcome = { kind: 'error', error: `${error.name}: ${error.message}` };
  }
  outcome.ms = Math.round(performance.now() - started);
  render(s, box, outcome);
  return outcome;
}

function matches(s, outcome) {
  if (s.expect === 'echo') return outcome.opened && outcome.echoed === true && outcome.code === 1000;
  if (s.expect === 'refused') return !outcome.opened && outcome.code === 1006;
  if (s.expect === 'blocked') return outcome.kind === 'error';
  if (outcome.kind !== 'response') return false;
  if (s.expect === 'ok') return outcome.status >= 200 && outcome.status < 300;
  return outcome.status === s.expect;
}

function excerpt(text) {
  let shown = text;
  try { shown = JSON.stringify(JSON.parse(text)); } catch (_) { /* not JSON: as is */ }
  return shown.length > 240 ? shown.slice(0, 240) + '…' : shown;
}

function render(s, box, outcome) {
  const isSocket = outcome.kind === 'socket';
  const failed = isSocket ? !outcome.opened : outcome.kind === 'error' || outcome.status >= 400;
  const good = matches(s, outcome);
  let badgeClass = outcome.kind === 'error' ? 'bad' : outcome.status < 400 ? 'good' : 'warn';
  let badgeText = outcome.kind === 'error' ? outcome.error : `${outcome.status} ${outcome.statusText}`.trim();
  if (isSocket) {
    badgeClass = outcome.opened ? 'good' : 'bad';
    badgeText = outcome.opened ? `open, echoed, closed ${outcome.code}` : `closed ${outcome.code} without opening`;
  }
  const children = [
    el('div', { class: 'status-line' },
      el('span', { class: `badge ${badgeClass}` }, badgeText),
      el('span', { class: good ? 'verdict ok' : 'verdict unexpected' }, good ? '✓ as expected' : '✗ not what the demo expects'),
      el('span', { class: 'ms' }, `${outcome.ms} ms`)),
  ];
  if (isSocket) {
    children.push(el('h3', {}, 'Events the script saw'), el('pre', {}, outcome.events.join('\n')));
    if (failed) {
      children.push(el('p', { class: 'note' },
        'The script learns nothing more (not even the 403): the browser console says why; so does explain:'));
    }
  } else if (outcome.kind === 'response') {
    const lines = outcome.headers.map(([n, v]) => `${n}: ${v}`).join('\n') || '(none)';
    const probes = outcome.probes.map(([n, v]) => `response.headers.get('${n}') → ${v === null ? 'null' : JSON.stringify(v)}`).join('\n');
    children.push(
      el('div', { class: 'cols' },
        el('div', {}, el('h3', {}, 'Response headers the script can read'), el('pre', {}, lines + (probes ? '\n\n' + probes : ''))),
        el('div', {}, el('h3', {}, 'Body'), el('pre', {}, excerpt(outcome.body) || '(empty)'))));
  } else {
    children.push(el('p', { class: 'note' },
      'The script gets no status, no headers and no body. The browser console says why; so does explain:'));
  }
  const explain = explanations[s.id];
  if (explain) {
    const details = el('details', failed ? { open: '' } : {},
      el('summary', {}, failed ? 'Why: cors-proxy explain' : 'cors-proxy explain (why it is allowed)'),
      el('pre', { class: 'explain' }, `$ ${explain.command}\n${explain.output.trimEnd()}\n(exit status ${explain.exit})`));
    children.push(details);
  } else if (failed) {
    children.push(el('p', { class: 'note' }, 'explain.json not found: start the demo with `make run` to see the explain output here.'));
  }
  box.replaceChildren(...children);
  box.parentElement.classList.toggle('unexpected', !good);
}

async function runAll() {
  const button = document.getElementById('run-all');
  const summary = document.getElementById('summary');
  button.disabled = true;
  summary.textContent = 'running…';
  let expected = 0;
  for (const s of SCENARIOS) if (matches(s, await run(s))) expected += 1;
  button.disabled = false;
  summary.textContent = `${expected} of ${SCENARIOS.length} as expected`;
  summary.className = expected === SCENARIOS.length ? 'summary ok' : 'summary unexpected';
  document.body.dataset.done = '1';
}

async function loadExplanations() {
  try {
    const response = await fetch('explain.json', { cache: 'no-store' });
    if (response.ok) explanations = await response.json();
  } catch (_) {
    explanations = {};
  }
}

document.getElementById('page-origin').textContent = location.origin;
document.getElementById('proxy-origin').textContent = PROXY;
// For the credentialed call: a cookie for 127.0.0.1 (cookies ignore the port, so the proxy on
// :8080 gets it; same site, so SameSite=Lax lets it through).
document.cookie = 'demo_session=hello-from-the-demo-page; path=/; SameSite=Lax';
buildCards();
document.getElementById('run-all').addEventListener('click', runAll);
loadExplanations().then(() => {
  if (params.get('autorun') === '1') runAll();
});
