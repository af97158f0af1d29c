#!/usr/bin/env bash
# `make run`: builds, then starts
#   - demo-upstream, the demo API, on 127.0.0.1:3000, and the demo page (demo/site) on
#     http://127.0.0.1:5173 (a second origin, allowed in proxy.conf.example's cors {});
#   - cors-proxy serve --config proxy.conf.example on 127.0.0.1:8080 (admin on 127.0.0.1:9901).
# Before starting, writes demo/site/explain.json: `cors-proxy explain` for each of the page's
# calls, so the page can say why a call failed. Ctrl-C stops everything and exits 0.
#
# Environment: SWIFT (default swift), DEMO_NO_BUILD=1 to skip `swift build`.
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
API=127.0.0.1:3000
SITE=127.0.0.1:5173
PROXY=127.0.0.1:8080
ADMIN=127.0.0.1:9901
CONF=proxy.conf.example
PAGE_ORIGIN=http://$SITE
SITE_DIR=demo/site
LOGS=.build/demo-logs

die() { echo "run-demo: $*" >&2; exit 1; }

# A port is busy when something accepts a connection on it (bash's /dev/tcp; no extra tool).
port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in $API $SITE $PROXY $ADMIN; do
  if port_busy "$addr"; then
    die "$addr is already in use (another \`make run\`? see: ss -ltnp 'sport = :${addr##*:}'); stop it and retry"
  fi
done

if [ "${DEMO_NO_BUILD:-0}" != 1 ]; then
  echo "run-demo: swift build" >&2
  $SWIFT build
fi
BIN=$($SWIFT build --show-bin-path)
[ -x "$BIN/cors-proxy" ] && [ -x "$BIN/demo-upstream" ] || die "no cors-proxy/demo-upstream in $BIN: did the build fail?"
# For the commands printed below: the short `.build/debug` when it is the same directory.
SHOW_BIN=$BIN
[ "$(readlink -f .build/debug 2>/dev/null)" = "$(readlink -f "$BIN")" ] && SHOW_BIN=.build/debug

# JSON string literal of stdin (explain's output is ASCII text; this covers \ " and control chars).
json_string() {
  local s
  s=$(cat)
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/}
  s=${s//$'\n'/\\n}
  printf '"%s"' "$s"
}

# The page's calls (ids as in demo/site/demo.js) and the explain arguments for each.
SCENARIOS=(
  "allowed|/api/items"
  "denied|/api/admin/users"
  "preflight|--method PUT --header Content-Type --header X-Requested-With --preflight /api/items/1"
  "credentials|/api/me"
  "wildcard|/api/public/items"
  "bad-gateway|/api/legacy/reports"
  "ws-allowed|--websocket /api/ws/echo"
  "ws-denied|--websocket /api/admin/ws/echo"
)
"$BIN/cors-proxy" check --config "$CONF" >/dev/null || die "$CONF is invalid (run: cors-proxy check --config $CONF)"
{
  echo "{"
  sep=""
  for entry in "${SCENARIOS[@]}"; do
    id=${entry%%|*}
    args=${entry#*|}
    status=0
    # shellcheck disable=SC2086 # args is a word list on purpose
    output=$("$BIN/cors-proxy" explain --config "$CONF" --origin "$PAGE_ORIGIN" $args 2>&1) || status=$?
    command="cors-proxy explain --config $CONF --origin $PAGE_ORIGIN $args"
    printf '%s  "%s": {"command": %s, "exit": %d, "output": %s}' "$sep" "$id" \
      "$(printf '%s' "$command" | json_string)" "$status" "$(printf '%s' "$output" | json_string)"
    sep=$',\n'
  done
  printf '\n}\n'
} >"$SITE_DIR/explain.json"

mkdir -p "$LOGS"
pids=()
cleanup() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo >&2
    echo "run-demo: stopping" >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # Both servers exit 0 on SIGTERM (the proxy after draining, bounded by drain_timeout 10s).
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
on_signal() { cleanup; exit 0; }
trap on_signal INT TERM
trap cleanup EXIT

# Waits (bounded, ~10 s) until URL answers; fails with the log if PID died or it never does.
wait_http() {
  local url=$1 pid=$2 log=$3 i
  for i in $(seq 100); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$(basename "$log" .log) exited during start-up (log above)"; }
    sleep 0.1
  done
  cat "$log" >&2
  die "$url did not answer within 10 s"
}

"$BIN/demo-upstream" --listen "$API" --site-listen "$SITE" --site-dir "$SITE_DIR" >"$LOGS/demo-upstream.log" 2>&1 &
pids+=($!)
wait_http "http://$API/healthz" "${pids[0]}" "$LOGS/demo-upstream.log"
wait_http "http://$SITE/" "${pids[0]}" "$LOGS/demo-upstream.log"

"$BIN/cors-proxy" serve --config "$CONF" >"$LOGS/cors-proxy.log" 2>&1 &
pids+=($!)
wait_http "http://$ADMIN/readyz" "${pids[1]}" "$LOGS/cors-proxy.log"

cat <<EOF

  cors-proxy demo is running.

  Open the demo page:   $PAGE_ORIGIN/          (or $PAGE_ORIGIN/?autorun=1)
  Proxy:                http://$PROXY  ->  API http://$API   (conf: $CONF)
  Admin:                http://$ADMIN/metrics

  Try:
    curl -si -H 'Origin: https://app.example.com' http://$PROXY/api/items
    curl -si -X OPTIONS -H 'Origin: https://app.example.com' \\
         -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: x-requested-with' \\
         http://$PROXY/api/items/1
    curl -si -H 'Origin: https://evil.example' http://$PROXY/api/items        # 403, never forwarded
    $SHOW_BIN/cors-proxy explain --config $CONF --origin https://evil.example /api/items
    $SHOW_BIN/cors-proxy explain --config $CONF --origin $PAGE_ORIGIN \\
         --method PUT --header X-Requested-With --preflight /api/items/1
    $SHOW_BIN/cors-proxy explain --config $CONF --origin https://evil.example --websocket /api/ws/echo

  Logs: $LOGS/cors-proxy.log, $LOGS/demo-upstream.log      Ctrl-C stops everything.

EOF

# Until Ctrl-C, or until one of the servers dies.
status=0
while kill -0 "${pids[0]}" 2>/dev/null && kill -0 "${pids[1]}" 2>/dev/null; do
  wait -n "${pids[@]}" 2>/dev/null && status=0 || status=$?
done
# Ctrl-C in a terminal reaches the servers too: they stop cleanly (exit 0, or 130/143
# when killed by the signal). Anything else is a crash worth reporting.
case $status in
  0 | 130 | 143) cleanup; exit 0 ;;
esac
echo "run-demo: a server exited unexpectedly (status $status); logs in $LOGS" >&2
exit 1
