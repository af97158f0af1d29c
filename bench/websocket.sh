#!/usr/bin/env bash
# bench/websocket.sh — what a tunnelled WebSocket message costs: echo round trips of one small
# message at a time, straight to demo-upstream's /ws/echo and through cors-proxy to it, pinned
# as bench/run.sh pins (proxy on core 0; client and upstream on core 1). Prints p50/p99 round
# trip and the proxy's CPU per round trip (all its threads, from schedstat; a round trip is two
# messages through the tunnel, one each way). Release build;
# 127.0.0.1 only; everything started here is stopped on exit. Results: docs/BENCHMARKS.md
# ("WebSocket").
#
#   bench/websocket.sh                 # ROUNDS=3 COUNT=20000 SIZES="32 4096"
#   ROUNDS=1 COUNT=5000 bench/websocket.sh
#
# Knobs: ROUNDS, COUNT (round trips per run), SIZES (message sizes, bytes), PROXY_CORE=0
# LOAD_CORE=1, NICE=-10, SKIP_BUILD=1, CORS_BIN=PATH and UPSTREAM_BIN=PATH (other builds).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-20000}
SIZES=${SIZES:-"32 4096"}
PROXY_CORE=${PROXY_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
NICE=${NICE:--10}
ORIGIN=https://app.example.com

log() { printf '[ws-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[ws-bench] ABORT: %s\n' "$*" >&2; exit 1; }
# exec: in the background, $! is then the process itself (as in bench/run.sh)
pin() { local core=$1; shift; exec nice -n "$NICE" taskset -c "$core" "$@"; }

if [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${CORS_BIN:-}" ]; then
    log "building (swift build -c release)"
    (cd "$ROOT" && swift build -c release 2>&1 | tail -n 2) >&2
fi
CORS_BIN=${CORS_BIN:-"$ROOT/.build/release/cors-proxy"}
UPSTREAM_BIN=${UPSTREAM_BIN:-"$ROOT/.build/release/demo-upstream"}
[ -x "$CORS_BIN" ] && [ -x "$UPSTREAM_BIN" ] || die "no release build in $ROOT/.build/release"

TMP=$(mktemp -d /tmp/cors-ws-bench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (bounded) for a line matching $2 in file $1; prints it.
wait_line() {
    for _ in $(seq 200); do
        grep -m1 "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    cat "$1" >&2
    die "no '$2' in $1"
}

pin "$LOAD_CORE" "$UPSTREAM_BIN" --listen 127.0.0.1:0 --threads 1 --no-record --quiet >"$TMP/up.out" 2>&1 &
PIDS+=($!)
UP_PORT=$(wait_line "$TMP/up.out" '^listening on' | sed 's/.*:\([0-9]*\)$/\1/')
cat >"$TMP/proxy.conf" <<CONF
listen 127.0.0.1:0
upstream api http://127.0.0.1:$UP_PORT
cors { allow_origin $ORIGIN }
route /api/ { upstream api }
CONF
pin "$PROXY_CORE" "$CORS_BIN" serve --config "$TMP/proxy.conf" --log-level info --event-loops 1 --curl-workers 1 \
    >/dev/null 2>"$TMP/proxy.err" &
PROXY_PID=$!
PIDS+=($PROXY_PID)
PROXY_PORT=$(wait_line "$TMP/proxy.err" ' listening .*port=' | sed 's/.*port=\([0-9]*\).*/\1/')
log "upstream :$UP_PORT (core $LOAD_CORE), cors-proxy :$PROXY_PORT (core $PROXY_CORE, pid $PROXY_PID)"

RAW="$TMP/raw.jsonl"
for round in $(seq "$ROUNDS"); do
    for size in $SIZES; do
        # Alternate the order each round, as bench/run.sh rotates its targets.
        if [ $((round % 2)) = 1 ]; then order="direct proxy"; else order="proxy direct"; fi
        for target in $order; do
            if [ "$target" = direct ]; then
                line=$(pin "$LOAD_CORE" python3 "$BENCH/ws_echo.py" "$UP_PORT" /ws/echo "$ORIGIN" "$COUNT" "$size")
            else
                line=$(pin "$LOAD_CORE" python3 "$BENCH/ws_echo.py" "$PROXY_PORT" /api/ws/echo "$ORIGIN" "$COUNT" \
                    "$size" "$PROXY_PID")
            fi
            echo "{\"target\":\"$target\",\"round\":$round,${line#\{}" >>"$RAW"
            log "round $round, $size B, $target: $line"
        done
    done
done
grep -q 'kind=websocket status=101' "$TMP/proxy.err" || die "the proxy logged no tunnel"

python3 - "$RAW" "$COUNT" "$ROUNDS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
count, rounds = sys.argv[2], sys.argv[3]
print(f"\nWebSocket echo, one message at a time ({count} round trips x {rounds} rounds; medians over rounds)\n")
print("| message | direct p50 | direct p99 | through cors-proxy p50 | p99 | added p50 | cors-proxy CPU per round trip |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for size in sorted({r["size"] for r in rows}):
    def med(target, key):
        return statistics.median(r[key] for r in rows if r["size"] == size and r["target"] == target)
    d50, d99, p50, p99 = med("direct", "p50_us"), med("direct", "p99_us"), med("proxy", "p50_us"), med("proxy", "p99_us")
    cpu = med("proxy", "cpu_us_per_message")
    print(f"| {size} B | {d50:.1f} µs | {d99:.1f} µs | {p50:.1f} µs | {p99:.1f} µs | +{p50 - d50:.1f} µs | {cpu:.1f} µs |")
PY
