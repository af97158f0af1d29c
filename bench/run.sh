#!/usr/bin/env bash
# bench/run.sh — cors-proxy vs nginx vs Go (httputil.ReverseProxy + rs/cors),
# all three with the same CORS rules, in front of the same fast nginx upstream.
#
#   make bench                       # ROUNDS=3 DURATION=10s
#   ROUNDS=1 DURATION=3s bench/run.sh
#
# Knobs (environment):
#   ROUNDS=3          rounds; targets alternate (rotate) every round; medians reported
#   DURATION=10s      wrk duration per run (seconds, "s" suffix optional)
#   SCENARIOS="preflight small64 small512 dl1m up8m dl64m"
#                     TLS scenarios (nginx and cors-proxy only, the same certificate):
#                     tls-preflight tls-small64 (HTTP/1.1 over TLS, keep-alive, wrk),
#                     h2-preflight h2-small64 (HTTP/2, h2load: 4 connections x 16 streams),
#                     tls-handshake (GET small with Connection: close: a new TLS connection
#                     per request, wrk c=16); SCENARIOS=tls runs those five
#   TARGETS="direct nginx nginx-log go cors-proxy defaults"
#                     cors-proxy: tuned (--log-level warning --event-loops 1 --curl-workers 1);
#                     defaults: the same binary started with no flags at all, as users run it;
#                     cors-proxy-b: a second binary (CORS_BIN_B), tuned, for a before/after A/B
#                     (CORS_FLAGS_B="" starts it with no flags, like defaults)
#                     nginx-log: nginx with its access log on (defaults' counterpart)
#   PROXY_CORE=0 LOAD_CORE=1   taskset cores: proxies | wrk + upstream nginx
#   SKIP_BUILD=1      do not run `swift build -c release`
#   CORS_BIN=PATH     benchmark another cors-proxy binary (skips the swift build)
#   NICE=-10          nice level of everything the bench starts (the machine may be
#                     shared; the same for every target, so the comparison stays fair)
#   KEEP_TMP=1        keep the temp dir (nginx logs, proxy logs) for debugging
#   PORT_OFFSET=0     added to every port below (the machine is shared: another bench, or a
#                     hand-started nginx, may hold 18080)
#
# Only 127.0.0.1 traffic; ports 18080-18087 (cleartext) and 18092-18097 (TLS), plus PORT_OFFSET.
# Everything started here is
# stopped on exit (trap), the temp dir removed. Results: bench/results/.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
DUR_S=${DURATION%s}
SCENARIOS=${SCENARIOS:-"preflight small64 small512 dl1m up8m dl64m"}
TLS_SCENARIOS="tls-preflight tls-small64 h2-preflight h2-small64 tls-handshake"
expanded=""
for s in $SCENARIOS; do
    case $s in
        tls) expanded+="$TLS_SCENARIOS " ;;
        preflight|small64|small512|dl1m|up8m|dl64m|tls-preflight|tls-small64|h2-preflight|h2-small64|tls-handshake)
            expanded+="$s " ;;
        *) printf '[bench] ABORT: unknown scenario %s\n' "$s" >&2; exit 1 ;;
    esac
done
SCENARIOS=${expanded% }
TARGETS=${TARGETS:-"direct nginx nginx-log go cors-proxy defaults"}
PROXY_CORE=${PROXY_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
NICE=${NICE:--10}
ORIGIN="https://app.example.com"

PORT_OFFSET=${PORT_OFFSET:-0}
[[ "$PORT_OFFSET" =~ ^[0-9]+$ ]] || { echo "[bench] ABORT: PORT_OFFSET must be a number" >&2; exit 1; }
P() { echo $(($1 + PORT_OFFSET)); }
# The templates and bench/proxy.conf name the default ports; this moves them by PORT_OFFSET.
shift_ports() { perl -pe 's/127\.0\.0\.1:(180\d\d)\b/"127.0.0.1:" . ($1 + '"$PORT_OFFSET"')/ge'; }
UP_PORT=$(P 18080)
declare -A PORT=([direct]=$(P 18080) [nginx]=$(P 18082) [go]=$(P 18083) [cors-proxy]=$(P 18084) [defaults]=$(P 18085) [cors-proxy-b]=$(P 18086) [nginx-log]=$(P 18087))
# The TLS listeners (HTTP/2 and HTTP/1.1 through ALPN) of the targets that have one.
declare -A TLS_PORT=([nginx]=$(P 18092) [cors-proxy]=$(P 18094) [defaults]=$(P 18095) [cors-proxy-b]=$(P 18096) [nginx-log]=$(P 18097))
is_tls() { [[ " $TLS_SCENARIOS " == *" $1 "* ]]; }
WANT_TLS=0
for s in $SCENARIOS; do is_tls "$s" && WANT_TLS=1; done

# only ever run in the background (`pin CORE cmd... &`): exec keeps $! the real PID
pin() { local core=$1; shift; exec nice -n "$NICE" taskset -c "$core" "$@"; }
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '\n[bench] ABORT: %s\n' "$*" >&2; exit 1; }

[[ "$DUR_S" =~ ^[0-9]+$ ]] || die "DURATION must be whole seconds (e.g. 10s), got '$DURATION'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 cores; pinning will overlap"

# ---------------------------------------------------------------- cleanup
TMP=""
STARTED=()            # PIDs we started, stopped in reverse order
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        kill -TERM "${STARTED[i]}" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        if [ "${KEEP_TMP:-0}" = 1 ]; then echo "[bench] kept $TMP" >&2; else rm -rf "$TMP"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ 1. deps, build
n_scen=$(wc -w <<<"$SCENARIOS"); n_targ=$(wc -w <<<"$TARGETS")
est=$(( ROUNDS * n_scen * n_targ * (DUR_S + 1) + 10 * n_targ + 30 ))
log "plan: $ROUNDS round(s) x $n_scen scenarios x $n_targ targets x ${DUR_S}s"
log "expected time: ~$(( est / 60 )) min $(( est % 60 )) s after the build (+ build, first time only)"

need=(wrk nginx-light golang-go golang-github-rs-cors-dev util-linux python3 curl libcurl4-openssl-dev openssl nghttp2-client)
missing=()
for pkg in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for p in $(for q in 18080 18081 18082 18083 18084 18085 18086 18087 18092 18094 18095 18096 18097; do P "$q"; done); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        die "port 127.0.0.1:$p is already in use; stop whatever listens there"
    fi
done

ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
TMP=$(mktemp -d /tmp/cors-bench.XXXXXX)
chmod 755 "$TMP"      # nginx workers run as an unprivileged user and must read the files
RESULTS="$BENCH/results"; mkdir -p "$RESULTS"
RAW="$RESULTS/raw-$(date +%Y%m%d-%H%M%S).jsonl"; : >"$RAW"

if [[ " $TARGETS " == *" cors-proxy "* || " $TARGETS " == *" defaults "* ]] && [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${CORS_BIN:-}" ]; then
    log "building cors-proxy (swift build -c release)"
    (cd "$ROOT" && swift build -c release --product cors-proxy 2>&1 | tail -n 3) >&2
fi
CORS_BIN=${CORS_BIN:-"$ROOT/.build/release/cors-proxy"}
[[ " $TARGETS " != *" cors-proxy "* && " $TARGETS " != *" defaults "* ]] || [ -x "$CORS_BIN" ] || die "$CORS_BIN not found (swift build -c release failed?)"
[[ " $TARGETS " != *" cors-proxy-b "* ]] || [ -x "${CORS_BIN_B:-}" ] || die "cors-proxy-b needs CORS_BIN_B=PATH (an executable)"

log "building the Go proxy offline (GOPATH=/usr/share/gocode, GO111MODULE=off)"
(cd "$BENCH/goproxy" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off \
    go build -o "$TMP/goproxy" .) || die "go build failed (is golang-github-rs-cors-dev installed?)"

# ------------------------------------------------------------ 2. upstream
mkdir -p "$TMP/up/www" "$TMP/ngx"
head -c $((1 << 20)) /dev/urandom >"$TMP/up/www/1m.bin"
head -c $((64 << 20)) /dev/urandom >"$TMP/up/www/64m.bin"
head -c $((8 << 20)) /dev/urandom >"$TMP/upload-8m.bin"
# One certificate for every TLS listener: EC P-256, 127.0.0.1, self-signed (the clients do not verify).
mkdir -p "$TMP/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/tls/key.pem" -out "$TMP/tls/cert.pem" 2>/dev/null \
    || die "openssl could not make the bench certificate"
chmod 644 "$TMP/tls/key.pem"
sed "s#@PREFIX@#$TMP/up#g" "$BENCH/nginx-upstream.conf.tmpl" | shift_ports >"$TMP/up/nginx.conf"
sed -e "s#@PREFIX@#$TMP/ngx#g" -e "s#@TLS@#$TMP/tls#g" "$BENCH/nginx-proxy.conf.tmpl" | shift_ports >"$TMP/ngx/nginx.conf"
# nginx-log: the same nginx with its access log on, as shipped (combined format, one write per
# request), the fair partner of cors-proxy's defaults column, whose access log is on too.
mkdir -p "$TMP/ngxlog"
sed -e "s#@PREFIX@#$TMP/ngxlog#g" -e "s#@TLS@#$TMP/tls#g" -e "s#127.0.0.1:18082#127.0.0.1:18087#" \
    -e "s#127.0.0.1:18092#127.0.0.1:18097#" \
    -e "s#^    access_log off;#    access_log $TMP/ngxlog/access.log;#" "$BENCH/nginx-proxy.conf.tmpl" | shift_ports >"$TMP/ngxlog/nginx.conf"

wait_port() {   # PORT PID NAME
    for _ in $(seq 200); do
        kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (see its log above)"
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; then return 0; fi
        sleep 0.1
    done
    die "$3 did not listen on 127.0.0.1:$1 within 20 s"
}

LAST_PID=""
start_nginx() { # PREFIX CORE NAME PORT  -> LAST_PID
    nginx -t -q -p "$1/" -e "$1/error.log" -c "$1/nginx.conf" || die "$3: nginx -t failed"
    pin "$2" nginx -p "$1/" -e "$1/error.log" -c "$1/nginx.conf" -g 'daemon off;' >"$1/stdout.log" 2>&1 &
    LAST_PID=$!; STARTED+=("$LAST_PID"); wait_port "$4" "$LAST_PID" "$3"
}
log "starting upstream nginx on 127.0.0.1:$UP_PORT (core $LOAD_CORE)"
start_nginx "$TMP/up" "$LOAD_CORE" "upstream nginx" $UP_PORT; UP_PID=$LAST_PID

# ------------------------------------------------------------ 3. proxies
log "starting nginx proxy :${PORT[nginx]}, Go proxy :${PORT[go]}, cors-proxy :${PORT[cors-proxy]} (core $PROXY_CORE)"
declare -A PID=()
has() { [[ " $TARGETS " == *" $1 "* ]]; }
PROXIES=""
for t in $TARGETS; do [ "$t" = direct ] || PROXIES+="$t "; done
if has nginx; then
    start_nginx "$TMP/ngx" "$PROXY_CORE" "nginx proxy" "${PORT[nginx]}"; PID[nginx]=$LAST_PID
fi
if has nginx-log; then
    start_nginx "$TMP/ngxlog" "$PROXY_CORE" "nginx proxy with access_log" "${PORT[nginx-log]}"; PID[nginx-log]=$LAST_PID
fi
if has go; then
    pin "$PROXY_CORE" "$TMP/goproxy" -listen "127.0.0.1:${PORT[go]}" -upstream "http://127.0.0.1:$UP_PORT" >/dev/null 2>"$TMP/goproxy.log" &
    PID[go]=$!; STARTED+=($!); wait_port "${PORT[go]}" "${PID[go]}" "Go proxy"
fi
start_cors() {  # TARGET BINARY PORT FLAGS...  (the conf's listen port is rewritten; a TLS listener added)
    local t=$1 bin=$2 port=$3; shift 3
    shift_ports <"$BENCH/proxy.conf" | sed "s/127.0.0.1:$(P 18084)\b/127.0.0.1:$port/" >"$TMP/$t.conf"
    # Only when a TLS scenario runs: an A/B against a build from before TLS listeners existed
    # (CORS_BIN_B) still works on the cleartext scenarios.
    if [ "$WANT_TLS" = 1 ]; then
        printf '\nlisten 127.0.0.1:%s tls\ntls {\n    certificate %s\n    key %s\n}\n' \
            "${TLS_PORT[$t]}" "$TMP/tls/cert.pem" "$TMP/tls/key.pem" >>"$TMP/$t.conf"
    fi
    "$bin" check --config "$TMP/$t.conf" >/dev/null || die "$t: cors-proxy check rejected bench/proxy.conf"
    pin "$PROXY_CORE" "$bin" serve --config "$TMP/$t.conf" "$@" >/dev/null 2>"$TMP/$t.log" &
    PID[$t]=$!; STARTED+=($!); wait_port "$port" "${PID[$t]}" "$t"
}
TUNED=(--log-level warning --event-loops 1 --curl-workers 1)
has cors-proxy && start_cors cors-proxy "$CORS_BIN" "${PORT[cors-proxy]}" "${TUNED[@]}"
# As a user runs it: no flags (info-level access log, default thread counts), only pinned.
has defaults && start_cors defaults "$CORS_BIN" "${PORT[defaults]}"
# CORS_FLAGS_B="" starts cors-proxy-b with no flags, for an A/B of the defaults.
if has cors-proxy-b; then
    if [ -n "${CORS_FLAGS_B+set}" ]; then
        read -r -a flags_b <<<"$CORS_FLAGS_B"
        start_cors cors-proxy-b "$CORS_BIN_B" "${PORT[cors-proxy-b]}" "${flags_b[@]}"
    else
        start_cors cors-proxy-b "$CORS_BIN_B" "${PORT[cors-proxy-b]}" "${TUNED[@]}"
    fi
fi

# ------------------------------------------------------------ 4. correctness
log "checking that every target answers every scenario correctly"
hdr() { grep -i "^$1:" "$2" | head -n1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
count_hdr() { grep -ci "^$1:" "$2" || true; }
fail=()
notes=()
for t in $PROXIES; do
    p=${PORT[$t]}; h="$TMP/h.$t"
    # preflight
    st=$(curl -s -o /dev/null -D "$h" -w '%{http_code}' -X OPTIONS -H "Origin: $ORIGIN" \
        -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: content-type, x-custom' \
        "http://127.0.0.1:$p/api/small")
    [ "$st" = 204 ] || fail+=("$t preflight: status $st, want 204")
    [ "$(hdr Access-Control-Allow-Origin "$h")" = "$ORIGIN" ] || fail+=("$t preflight: ACAO '$(hdr Access-Control-Allow-Origin "$h")'")
    grep -qi '^Access-Control-Allow-Methods:.*PUT' "$h" || fail+=("$t preflight: ACAM lacks PUT")
    grep -qi '^Access-Control-Allow-Headers:.*x-custom' "$h" || fail+=("$t preflight: ACAH lacks X-Custom")
    # small GET with Origin (the upstream sends its own ACAO: *)
    st=$(curl -s -o /dev/null -D "$h" -w '%{http_code}' -H "Origin: $ORIGIN" "http://127.0.0.1:$p/api/small")
    [ "$st" = 200 ] || fail+=("$t GET small: status $st")
    n=$(count_hdr Access-Control-Allow-Origin "$h")
    [ "$n" = 1 ] || fail+=("$t GET small: $n Access-Control-Allow-Origin headers, want exactly 1")
    [ "$(hdr Access-Control-Allow-Origin "$h")" = "$ORIGIN" ] || fail+=("$t GET small: ACAO '$(hdr Access-Control-Allow-Origin "$h")'")
    [ "$(hdr Access-Control-Allow-Credentials "$h")" = true ] || fail+=("$t GET small: no ACAC: true")
    # 1 MiB and 64 MiB downloads
    for sz in 1m:1048576 64m:67108864; do
        got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "Origin: $ORIGIN" "http://127.0.0.1:$p/api/${sz%%:*}")
        [ "$got" = "200 ${sz#*:}" ] || fail+=("$t GET /api/${sz%%:*}: got '$got', want '200 ${sz#*:}'")
    done
    # 8 MiB upload, then a GET on the same connection (stays in sync)
    got=$(curl -s -H "Origin: $ORIGIN" -o /dev/null -w '%{http_code} %{num_connects}\n' \
        -H 'Content-Type: application/octet-stream' --data-binary @"$TMP/upload-8m.bin" "http://127.0.0.1:$p/api/upload" \
        --next -s -H "Origin: $ORIGIN" -o /dev/null -w '%{http_code} %{num_connects}\n' "http://127.0.0.1:$p/api/small" | tr '\n' ' ')
    case "$got" in
        "200 1 200 0 ") ;;
        "200 1 200 1 ") notes+=("$t: KEEP-ALIVE BUG: after an 8 MiB upload (200) the proxy closed the client connection without announcing Connection: close; the next request needed a new connection") ;;
        *) fail+=("$t upload 8 MiB + GET on the same connection: got '$got', want '200 1 200 0 '") ;;
    esac
    # informational: a disallowed origin on an actual request
    st=$(curl -s -o /dev/null -D "$h" -w '%{http_code}' -H 'Origin: https://evil.example' "http://127.0.0.1:$p/api/small")
    notes+=("$t: GET with a disallowed Origin -> $st, ACAO headers: $(count_hdr Access-Control-Allow-Origin "$h")")
    st=$(curl -s -o /dev/null -D "$h" -w '%{http_code}' -X OPTIONS -H 'Origin: https://evil.example' \
        -H 'Access-Control-Request-Method: PUT' "http://127.0.0.1:$p/api/small")
    notes+=("$t: preflight from a disallowed Origin -> $st, ACAO headers: $(count_hdr Access-Control-Allow-Origin "$h")")
done
if [ "$WANT_TLS" = 1 ]; then
    for t in $PROXIES; do
        [ -n "${TLS_PORT[$t]:-}" ] || continue
        p=${TLS_PORT[$t]}; h="$TMP/h.$t"
        got=$(curl -sk --http2 -o /dev/null -D "$h" -w '%{http_code} %{http_version}' -X OPTIONS -H "Origin: $ORIGIN" \
            -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: content-type, x-custom' \
            "https://127.0.0.1:$p/api/small")
        [ "$got" = "204 2" ] || fail+=("$t TLS preflight over HTTP/2: got '$got', want '204 2'")
        [ "$(hdr Access-Control-Allow-Origin "$h")" = "$ORIGIN" ] || fail+=("$t TLS preflight: ACAO '$(hdr Access-Control-Allow-Origin "$h")'")
        for v in --http1.1 --http2; do
            got=$(curl -sk "$v" -o /dev/null -D "$h" -w '%{http_code} %{http_version}' -H "Origin: $ORIGIN" "https://127.0.0.1:$p/api/small")
            want="200 ${v#--http}"
            [ "$got" = "$want" ] || fail+=("$t TLS GET small $v: got '$got', want '$want'")
            n=$(count_hdr Access-Control-Allow-Origin "$h")
            [ "$n" = 1 ] || fail+=("$t TLS GET small $v: $n Access-Control-Allow-Origin headers, want exactly 1")
        done
        got=$(h2load -n 4 -c 1 -H "Origin: $ORIGIN" -H ':method: OPTIONS' -H 'Access-Control-Request-Method: PUT' \
            "https://127.0.0.1:$p/api/small" 2>&1 | grep -o 'status codes: [0-9]* 2xx' || true)
        [ "$got" = "status codes: 4 2xx" ] || fail+=("$t h2load OPTIONS preflight: got '$got', want 'status codes: 4 2xx'")
    done
fi
got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$UP_PORT/api/64m")
[ "$got" = "200 67108864" ] || fail+=("direct GET /api/64m: got '$got'")
if [ ${#fail[@]} -gt 0 ]; then
    printf '  FAIL %s\n' "${fail[@]}" >&2
    die "a target does not do the same work as the others; fix it before comparing"
fi
log "all checks passed. Informational (not part of the benchmark):"
printf '    %s\n' "${notes[@]}" >&2
printf '%s\n' "${notes[@]}" >"$TMP/notes"

# ------------------------------------------------------------ 5/6. runs
declare -A SCEN_PATH=([preflight]=/api/small [small64]=/api/small [small512]=/api/small [dl1m]=/api/1m [up8m]=/api/upload [dl64m]=/api/64m
    [tls-preflight]=/api/small [tls-small64]=/api/small [h2-preflight]=/api/small [h2-small64]=/api/small [tls-handshake]=/api/small)
declare -A SCEN_CONN=([preflight]=64 [small64]=64 [small512]=512 [dl1m]=16 [up8m]=8 [dl64m]=16
    [tls-preflight]=64 [tls-small64]=64 [h2-preflight]=4 [h2-small64]=4 [tls-handshake]=16)
# h2load: streams in flight per connection (4 x 16 = 64 requests in flight, as wrk's c=64).
H2_STREAMS=16

run_one() {    # TARGET SCENARIO ROUND DURATION_S RECORD(0|1)
    local t=$1 s=$2 r=$3 d=$4 rec=$5
    local port=${PORT[$t]} c=${SCEN_CONN[$s]} pids="" cpu0=0 cpu1=0 spid="" scheme=http
    if is_tls "$s"; then
        [ -n "${TLS_PORT[$t]:-}" ] || return 0     # direct and go have no TLS listener
        port=${TLS_PORT[$t]}; scheme=https
    fi
    local env=(WRK_METHOD=GET WRK_ORIGIN="$ORIGIN" WRK_PREFLIGHT=0 WRK_BODY_BYTES=0 WRK_CLOSE=0)
    case $s in
        preflight) env=(WRK_METHOD=OPTIONS WRK_ORIGIN="$ORIGIN" WRK_PREFLIGHT=1 WRK_BODY_BYTES=0 WRK_CLOSE=0) ;;
        # Keep-alive, as browsers upload (the checks above verify every target keeps the
        # connection after an 8 MiB upload). UP_CLOSE=1 sends Connection: close instead.
        up8m) env=(WRK_METHOD=POST WRK_ORIGIN="$ORIGIN" WRK_PREFLIGHT=0 WRK_BODY_BYTES=$((8 << 20)) WRK_CLOSE=${UP_CLOSE:-0}) ;;
        tls-preflight) env=(WRK_METHOD=OPTIONS WRK_ORIGIN="$ORIGIN" WRK_PREFLIGHT=1 WRK_BODY_BYTES=0 WRK_CLOSE=0) ;;
        tls-handshake) env=(WRK_METHOD=GET WRK_ORIGIN="$ORIGIN" WRK_PREFLIGHT=0 WRK_BODY_BYTES=0 WRK_CLOSE=1) ;;
    esac
    if [ "$t" != direct ]; then
        pids=$(python3 "$BENCH/procstat.py" tree "${PID[$t]}")
        pin "$LOAD_CORE" python3 "$BENCH/procstat.py" sample "$TMP/rss.json" $pids &
        spid=$!
        cpu0=$(python3 "$BENCH/procstat.py" cpu $pids)
    fi
    local load0
    load0=$(cut -d' ' -f1 /proc/loadavg)
    local out
    local url="$scheme://127.0.0.1:$port${SCEN_PATH[$s]}"
    case $s in
        h2-*)
            local h2=(-H "Origin: $ORIGIN")
            [ "$s" = h2-preflight ] && h2+=(-H ':method: OPTIONS' -H 'Access-Control-Request-Method: PUT' \
                -H 'Access-Control-Request-Headers: content-type, x-custom')
            out=$(nice -n "$NICE" taskset -c "$LOAD_CORE" h2load -t1 -c"$c" -m"$H2_STREAMS" -D"$d" "${h2[@]}" "$url" 2>&1 \
                | python3 "$BENCH/h2load-json.py" 2>&1) || true ;;
        *)
            out=$(env "${env[@]}" nice -n "$NICE" taskset -c "$LOAD_CORE" wrk -t1 -c"$c" -d"${d}s" --timeout 10s --latency \
                -s "$BENCH/wrk.lua" "$url" 2>&1) || true ;;
    esac
    local rss='null'
    if [ "$t" != direct ]; then
        cpu1=$(python3 "$BENCH/procstat.py" cpu $pids)
        kill -TERM "$spid"; wait "$spid" || true
        rss=$(cat "$TMP/rss.json")
        kill -0 "${PID[$t]}" 2>/dev/null || die "$t died during $s (round $r)"
    fi
    local json
    json=$(grep '^JSON ' <<<"$out" | cut -c6-)
    if [ -z "$json" ]; then
        printf '%s\n' "$out" >&2; die "wrk produced no result for $t $s"
    fi
    # cross-check: wrk's own --latency 99% line
    local p99line
    p99line=$(awk '$1=="99%"{print $2}' <<<"$out")
    if [ "$rec" = 1 ]; then
        printf '{"target":"%s","scenario":"%s","round":%d,"conns":%d,"wrk":%s,"wrk_p99":"%s","cpu_ticks":%d,"clk_tck":%d,"rss":%s,"loadavg":%s}\n' \
            "$t" "$s" "$r" "$c" "$json" "$p99line" $((cpu1 - cpu0)) "$(getconf CLK_TCK)" "$rss" "$load0" >>"$RAW"
        python3 - "$json" "$t" "$s" "$r" $((cpu1 - cpu0)) <<'EOF' >&2
import json, sys
w = json.loads(sys.argv[1]); t, s, r, ticks = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
secs = w["duration_us"] / 1e6
errs = sum(v for k, v in w.items() if k.startswith("err_"))
cpu = f"{ticks * 1e4 / max(w['requests'], 1):.1f} us cpu/req" if t != "direct" else ""
moved = w["requests"] * 8 * 2**20 if s == "up8m" else w["bytes"]
p99 = f"p99 {w['p99_us']/1000:7.2f} ms" if w["p99_us"] >= 0 else "p99       – ms"
print(f"    round {r} {s:13} {t:10} {w['requests']/secs:9.0f} req/s {moved/secs/2**20:8.1f} MiB/s "
      f"{p99}  {cpu}{'  ERRORS %d' % errs if errs else ''}")
EOF
    fi
}

log "warm-up (2 s per proxy)"
for t in $TARGETS; do run_one "$t" small64 0 2 0; done
if [ "$WANT_TLS" = 1 ]; then for t in $TARGETS; do run_one "$t" h2-small64 0 2 0; done; fi

read -r -a TLIST <<<"$TARGETS"
for ((r = 1; r <= ROUNDS; r++)); do
    # rotate the target order each round so drift hits every target alike
    order=()
    for ((i = 0; i < ${#TLIST[@]}; i++)); do order+=("${TLIST[(i + r - 1) % ${#TLIST[@]}]}"); done
    log "round $r/$ROUNDS (order: ${order[*]})"
    for s in $SCENARIOS; do
        for t in "${order[@]}"; do run_one "$t" "$s" "$r" "$DUR_S" 1; done
    done
done

# ------------------------------------------------------------ 6b. the libcurl floor
# What one proxied small GET costs libcurl alone (bench/curlfloor/floor.c: one reused easy
# handle, the proxy's options and headers, sequential GETs), on the proxies' core: the part of
# cors-proxy's CPU per GET no change to cors-proxy can remove.
if [[ " $SCENARIOS " == *" small64 "* ]] && [ "${FLOOR:-1}" = 1 ]; then
    cc_bin=$(command -v cc || command -v clang || true)
    if [ -n "$cc_bin" ] && "$cc_bin" -O2 "$BENCH/curlfloor/floor.c" -lcurl -o "$TMP/floor" 2>"$TMP/floor.err"; then
        floors=()
        for i in 1 2 3; do
            for iface in easy multi; do
                arg=(); [ $iface = multi ] && arg=(multi)
                out=$(nice -n "$NICE" taskset -c "$PROXY_CORE" "$TMP/floor" "http://127.0.0.1:18080/api/small" 20000 "${arg[@]}") \
                    || die "the libcurl floor program failed"
                echo "$out" >>"$TMP/floor.jsonl"
            done
        done
        floor_note=$(python3 - "$TMP/floor.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out = []
for iface in ("easy", "multi"):
    cpu = statistics.median(r["cpu_us_per_request"] for r in rows if r["interface"] == iface)
    out.append(f"{iface} {cpu:.1f}")
print("libcurl floor (bench/curlfloor/floor.c, sequential small GETs on one reused handle, median of 3 x 20,000): CPU us/req " + ", ".join(out))
PY
)
        log "$floor_note"
        notes+=("$floor_note")
        printf '%s\n' "$floor_note" >>"$TMP/notes"
    else
        log "no C compiler (cc or clang) that links -lcurl: the libcurl floor is skipped"
    fi
fi

# ------------------------------------------------------------ 7. report
python3 "$BENCH/report.py" "$RAW" "$RESULTS/latest.md" \
    "rounds=$ROUNDS duration=${DUR_S}s proxies on core $PROXY_CORE, wrk+upstream on core $LOAD_CORE" "$TMP/notes"
log "raw results: $RAW; table: $RESULTS/latest.md"
