#!/usr/bin/env bash
# Peak RSS of cors-proxy while a 1 GiB body streams through it each way
# (download from the upstream, then upload to it). Release build; 127.0.0.1 only.
# Usage: bench/stream-rss.sh [SIZE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-$((1 << 30))}
swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$bin/demo-upstream" --listen 127.0.0.1:0 --quiet --no-record >"$tmp/up.out" &
pids+=($!)
until grep -q "listening on" "$tmp/up.out"; do sleep 0.05; done
up_port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$tmp/up.out" | head -1)

cat >"$tmp/proxy.conf" <<CONF
listen 127.0.0.1:0
upstream api http://127.0.0.1:$up_port
max_body_size 0
cors { allow_origin https://app.example.com }
route / { upstream api }
CONF
"$bin/cors-proxy" serve --config "$tmp/proxy.conf" --log-level info 2>"$tmp/proxy.err" &
proxy_pid=$!
pids+=($proxy_pid)
until grep -q " listening" "$tmp/proxy.err"; do sleep 0.05; done
port=$(sed -n 's/.*port=\([0-9]*\).*listening.*/\1/p' "$tmp/proxy.err" | head -1)

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$proxy_pid/status"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$proxy_pid/status"; }

# Sample RSS every 50 ms while a command runs; print "start max end" in KiB.
measure() {
  local start max now
  start=$(rss_kib); max=$start
  "$@" &
  local job=$!
  while kill -0 "$job" 2>/dev/null; do
    now=$(rss_kib); [ "$now" -gt "$max" ] && max=$now
    sleep 0.05
  done
  wait "$job"
  echo "$start $max $(rss_kib)"
}

curl -s -o /dev/null "http://127.0.0.1:$port/healthz"
read -r d0 dmax d1 < <(measure curl -s -o /dev/null -w '' "http://127.0.0.1:$port/bytes/$size")
read -r u0 umax u1 < <(measure sh -c "head -c $size /dev/zero | curl -s -o /dev/null -T - http://127.0.0.1:$port/upload")
printf 'body %d MiB\n' $((size >> 20))
printf 'download: RSS start %d KiB, peak %d KiB (+%d KiB)\n' "$d0" "$dmax" $((dmax - d0))
printf 'upload:   RSS start %d KiB, peak %d KiB (+%d KiB)\n' "$u0" "$umax" $((umax - u0))
printf 'VmHWM %d KiB\n' "$(hwm_kib)"
