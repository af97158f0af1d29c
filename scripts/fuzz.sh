#!/usr/bin/env bash
# Conf-parser fuzzing (libFuzzer + AddressSanitizer), bounded in time.
#   FUZZ_SECONDS=120  total fuzzing time (default 120)
#   FUZZ_JOBS=1       parallel libFuzzer workers (each gets FUZZ_SECONDS)
# Fails (non-zero) on a crash, a trap, an input slower than 1 s, a leak, or > 2 GiB RSS.
# The corpus grows in fuzz/conf/corpus (not committed); crashing inputs land in
# fuzz/conf/artifacts/ — turn each into a test in Tests/ProxyConfigTests/ConfFuzzRegressionTests.swift.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-120}
jobs=${FUZZ_JOBS:-1}
dir=fuzz/conf
(cd "$dir" && swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 \
    | grep -v "Cannot export local symbol" | tail -3)
bin="$dir/.build/debug/ConfFuzz"
seeds="$dir/.build/seeds"
rm -rf "$seeds"
python3 "$dir/make-seeds.py" "$seeds"
mkdir -p "$dir/corpus" "$dir/artifacts"
log="$dir/.build/fuzz.log"
echo "fuzzing the conf parser for ${seconds}s (log: $log)"
status=0
# -timeout=1: an input taking over 1 s is a hang; -max_len: confs are small, but let lines grow.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
"$bin" "$dir/corpus" "$seeds" \
    -dict="$dir/conf.dict" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="$dir/artifacts/" -print_final_stats=1 \
    ${FUZZ_EXTRA:-} >"$log" 2>&1 || status=$?
grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|cov: " "$log" | tail -4 || true
if [ "$status" -ne 0 ]; then
    echo "fuzz: FAILED (exit $status); the report:" >&2
    grep -E -A30 "ERROR: |==ERROR|Fatal error|deadly signal|timeout after|SUMMARY" "$log" | head -60 >&2 || tail -40 "$log" >&2
    ls -1t "$dir/artifacts" | head -5 >&2
    exit 1
fi
echo "fuzz: no crash, hang or leak in ${seconds}s"
