// Fetches from the proxy's TLS listener, then writes {allowed, timed, denied, protocols} into
// #results: each outcome as cors.js records it, and protocols maps each fetched path to the
// nextHopProtocol of its resource timing entry ("h2" when the fetch went over HTTP/2).
// Chromium shows a cross-origin entry's nextHopProtocol only when the response allows it
// (Timing-Allow-Origin, which the demo's /timing-allowed sends); otherwise it reads "".
'use strict';

const params = new URLSearchParams(location.search);
const PROXY = `https://127.0.0.1:${params.get('proxy')}`;

async function call(path) {
  try {
    const response = await fetch(PROXY + path);
    return { ok: true, status: response.status, body: await response.text() };
  } catch (error) {
    return { ok: false, error: `${error.name}: ${error.message}` };
  }
}

async function main() {
  const results = { origin: location.origin };
  results.allowed = await call('/api/items');
  results.timed = await call('/api/timing-allowed');
  results.denied = await call('/api/admin/secret');
  results.protocols = {};
  for (const entry of performance.getEntriesByType('resource')) {
    if (entry.name.startsWith(PROXY)) results.protocols[entry.name.slice(PROXY.length)] = entry.nextHopProtocol;
  }
  document.getElementById('results').textContent = JSON.stringify(results);
}

main().catch((error) => {
  document.getElementById('results').textContent = JSON.stringify({ pageError: String(error) });
});
