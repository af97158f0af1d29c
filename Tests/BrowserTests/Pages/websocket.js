// Opens WebSockets through the proxy and writes {scenario: what the socket saw} into #results,
// again after every event (so a dump taken early shows how far the page got), with
// `done: true` once every socket has reported.
//
// When Chromium dumps the DOM: this page is loaded without a virtual time budget, because
// virtual time does not work with WebSocket events (tried: while a fetch holds virtual time,
// socket events may wait until it ends; without one, the budget runs out before a socket has
// opened). Without a budget, --dump-dom dumps at the page's load event, so the page holds its
// own load event back: an iframe still loading delays it, and the page removes the iframe
// once every socket has reported. The hold is bounded in real time: the iframe loads the demo
// API's /slow/HOLD_MS, so after HOLD_MS the load event comes anyway and the dump shows what
// has arrived by then (a lost event fails the test with what was seen, it never hangs it).
'use strict';

const params = new URLSearchParams(location.search);
const PROXY = `ws://127.0.0.1:${params.get('proxy')}`;
const API = `http://127.0.0.1:${params.get('api')}`;
const HOLD_MS = 30000;

const hold = document.createElement('iframe');
hold.src = `${API}/slow/${HOLD_MS}`;
document.body.append(hold);

const results = { origin: location.origin, done: false };

function write() {
  document.getElementById('results').textContent = JSON.stringify(results);
}

// One socket through the proxy, recorded under results[name] as things happen; resolves when
// it closes. `onOpen(ws)` runs once it is open.
function open(name, path, onOpen) {
  return new Promise((resolve) => {
    const seen = { opened: false, messages: [], error: false };
    results[name] = seen;
    const ws = new WebSocket(PROXY + path);
    ws.onopen = () => {
      seen.opened = true;
      seen.protocol = ws.protocol;
      write();
      onOpen(ws);
    };
    ws.onmessage = (event) => {
      seen.messages.push(String(event.data));
      write();
    };
    ws.onerror = () => {
      seen.error = true;
      write();
    };
    ws.onclose = (event) => {
      seen.closeCode = event.code;
      seen.closeReason = event.reason;
      write();
      resolve(seen);
    };
  });
}

async function main() {
  // Allowed: this page's origin is in allow_origin of /api/. Echo one message, then close.
  await open('echo', '/api/ws/echo', (ws) => {
    ws.addEventListener('message', () => ws.close(1000, 'done'));
    ws.send('hello through the proxy');
  });
  // Cross-site WebSocket hijacking, stopped: /api/private/ allows only https://admin.example.com
  // (were it let through, the demo API would open it), so the proxy refuses the handshake (403)
  // and the page sees only a failed socket.
  await open('hijack', '/api/private/ws/echo', () => {});
  // Shutdown: the test sends the proxy SIGTERM once this socket is open; after drain_timeout
  // the proxy sends a Close frame with 1001 (going away).
  await open('goingAway', '/api/ws/idle', () => {});
  results.done = true;
  write();
}

main()
  .catch((error) => {
    results.pageError = String(error);
    write();
  })
  .finally(() => {
    document.title = 'done';
    hold.remove();
  });
