#!/usr/bin/env bash
# Conf-parser fuzzing (libFuzzer + AddressSanitizer), bounded in time.
#   FUZZ_SECONDS=120  total fuzzing time (default 120)
#   CONF_FUZZ_MODE=slots  fuzz directive values inside a valid conf instead of whole confs
# Fails (non-zero) on a crash, a trap, an input slower than 1 s, a leak, or > 2 GiB RSS.
# The corpus grows in fuzz/conf/corpus (not committed); crashing inputs land in
# fuzz/conf/artifacts/ — turn each into a test in Tests/ProxyConfigTests/ConfFuzzRegressionTests.swift.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-120}
dir=fuzz/conf
(cd "$dir" && swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 \
    | grep -v "Cannot export local symbol" | tail -3)
bin="$dir/.build/release/ConfFuzz"
seeds="$dir/.build/seeds"
corpus="$dir/corpus"
rm -rf "$seeds"
if [ "${CONF_FUZZ_MODE:-}" = slots ]; then
    # Values of single directives inside a valid conf (see ConfFuzz.swift).
    python3 "$dir/make-seeds.py" "$seeds" --slots
    corpus="$dir/corpus-slots"
else
    python3 "$dir/make-seeds.py" "$seeds"
fi
mkdir -p "$corpus" "$dir/artifacts"
log="$dir/.build/fuzz.log"
echo "fuzzing the conf parser for ${seconds}s (log: $log)"
status=0
# -timeout=1: an input taking over 1 s is a hang; -max_len: confs are small, but let lines grow.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
"$bin" "$corpus" "$seeds" \
    -dict="$dir/conf.dict" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="$dir/artifacts/" -print_final_stats=1 \
    ${FUZZ_EXTRA:-} >"$log" 2>&1 || status=$?
grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|cov: " "$log" | tail -4 || true
if [ "$status" -ne 0 ] && grep -q "ERROR: libFuzzer: timeout" "$log"; then
    # A timeout on a loaded machine (sanitizer builds running beside) may not be the input's
    # fault: replay the input alone three times; only a reproducible one is a hang.
    artifact=$(ls -1t "$dir"/artifacts/timeout-* 2>/dev/null | head -1)
    reproduced=0
    for attempt in 1 2 3; do
        if ! "$bin" -timeout=1 -runs=1 "$artifact" >"$log.replay" 2>&1; then reproduced=1; break; fi
    done
    if [ "$reproduced" -eq 0 ]; then
        echo "fuzz: a 1 s timeout did not reproduce when replayed alone (machine load): $artifact" >&2
        mv "$artifact" "$dir/artifacts/spurious-$(basename "$artifact")"
        status=0
    fi
fi
if [ "$status" -ne 0 ]; then
    echo "fuzz: FAILED (exit $status); the report:" >&2
    grep -E -A30 "ERROR: |==ERROR|Fatal error|deadly signal|timeout after|SUMMARY" "$log" | head -60 >&2 || tail -40 "$log" >&2
    ls -1t "$dir/artifacts" | head -5 >&2
    exit 1
fi
echo "fuzz: no crash, hang or leak in ${seconds}s"
