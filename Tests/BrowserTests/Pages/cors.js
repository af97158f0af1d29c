// Runs each scenario in turn, then writes {scenario: outcome} into #results.
// An outcome is {ok: true, status, headers: {name: value} as readable by the script,
// body, probes: {name: response.headers.get(name)}} or {ok: false, error: "TypeError: …"}.
'use strict';

const params = new URLSearchParams(location.search);
const PROXY = `http://127.0.0.1:${params.get('proxy')}`;

async function call(path, init = {}, probe = []) {
  try {
    const response = await fetch(PROXY + path, init);
    const headers = {};
    for (const [name, value] of response.headers) headers[name] = value;
    const probes = {};
    for (const name of probe) probes[name] = response.headers.get(name);
    const body = await response.text();
    return { ok: true, status: response.status, headers, probes, body };
  } catch (error) {
    return { ok: false, error: `${error.name}: ${error.message}` };
  }
}

// The same-origin page runs in an iframe served BY THE PROXY (its /pages/ route forwards to
// this site server) and reports back with postMessage. The timer is in virtual time, which
// does not advance while the iframe or its fetch is loading: it fires only if the iframe
// never reports (e.g. the proxy did not serve it), so that the other results still arrive.
function sameOrigin() {
  return new Promise((resolve) => {
    setTimeout(() => resolve({ ok: false, error: 'no message from the same-origin iframe' }), 5000);
    window.addEventListener('message', (event) => {
      if (event.origin === PROXY) resolve(event.data);
    });
    const frame = document.createElement('iframe');
    frame.src = `${PROXY}/pages/same-origin.html`;
    document.body.append(frame);
  });
}

async function main() {
  const results = { origin: location.origin };
  // A cookie for 127.0.0.1 (cookies ignore ports): sent to the proxy by credentialed calls.
  document.cookie = 'browser_test=cookie-value; path=/; SameSite=Lax';
  results.allowedGet = await call('/api/items', {}, ['X-Request-Id', 'X-Internal-Trace']);
  results.deniedOrigin = await call('/api/admin/secret');
  results.preflightedPut = await call('/api/items/1', {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'browser-test' },
    body: JSON.stringify({ name: 'apple' }),
  });
  results.credentialsOn = await call('/api/me', { credentials: 'include' });
  results.publicWithoutCredentials = await call('/api/public/items');
  results.credentialsOff = await call('/api/public/me', { credentials: 'include' });
  results.badGateway = await call('/api/legacy/reports');
  results.sameOriginPost = await sameOrigin();
  document.getElementById('results').textContent = JSON.stringify(results);
  document.title = 'done';
}

main().catch((error) => {
  document.getElementById('results').textContent = JSON.stringify({ pageError: String(error) });
});
