# cors-proxy: the two commands a newcomer needs are `make run` and `make test`.
# Every target has one `## description` line just above it (details go in plain `#` lines):
# `make help` (also plain `make`) prints them, read from this file, and `make lint` fails on a
# target without one.
SWIFT ?= swift

.DEFAULT_GOAL := help
.PHONY: help deps build release run test test-unit test-browser bench fuzz soak faults fmt lint clean

# `make help`'s reader: a `## ` line describes the target defined next; plain `#` lines between
# them are details; a target without a description prints "(no description)".
help_awk = /^\#\# / { desc = substr($$0, 4); next } \
	/^\#/ { next } \
	/^[A-Za-z0-9_-]+:/ { printf "  %-13s %s\n", substr($$0, 1, index($$0, ":") - 1), (desc == "" ? "(no description)" : desc) } \
	{ desc = "" }

## Lists every target with its description (the default goal).
help:
	@echo "usage: make TARGET   (a newcomer needs two: make run, make test)"
	@echo
	@awk '$(help_awk)' $(firstword $(MAKEFILE_LIST))

## Installs the Debian packages the build needs (libcurl, pkg-config, curl) when they are missing.
deps:
	@scripts/ensure-deps.sh build

## Debug build (.build/debug/cors-proxy, .build/debug/demo-upstream).
build: deps
	$(SWIFT) build

## Release build (.build/release/cors-proxy).
release: deps
	$(SWIFT) build -c release

## Starts the demo API, the demo page (http://127.0.0.1:5173) and the proxy with proxy.conf.example.
run: deps
	@scripts/run-demo.sh

## Every test: lint, the container and manifest checks, unit, integration, browser (what CI runs).
# Unit, integration (real sockets, real upstream process), browser (headless Chromium), and the
# container checks (no Docker engine needed).
test:
	@scripts/ensure-deps.sh test
	@$(MAKE) --no-print-directory lint
	@scripts/check-container.sh
	$(SWIFT) test

## Only the unit tests (no child process, no socket to another process, no browser).
test-unit: deps
	$(SWIFT) test --filter 'CORSPolicyTests|ProxyConfigTests|ProxyServerTests|CurlBridgeTests'

## Only the headless-Chromium end-to-end tests (Tests/BrowserTests).
test-browser:
	@scripts/ensure-deps.sh test
	$(SWIFT) test --filter BrowserTests

## Benchmark: cors-proxy vs nginx vs Go+rs/cors on 2 pinned cores (~14 min; docs/BENCHMARKS.md).
# Knobs: ROUNDS=3 DURATION=10s SCENARIOS=... TARGETS=... (see bench/run.sh).
bench:
	@bench/run.sh

## Conf-parser fuzzing (libFuzzer + ASan, fuzz/conf); FUZZ_SECONDS (default 120).
# CONF_FUZZ_MODE=slots fuzzes directive values inside a valid conf.
# Fails on a crash, an input slower than 1 s, or a leak.
fuzz:
	@scripts/fuzz.sh

## Soak: steady mixed traffic through the release proxy; SOAK_SECONDS (600), SOAK_RATE (200/s).
# RSS/FD samples every 10 s go to docs/RELIABILITY.md.
soak: deps
	$(SWIFT) build -c release
	@scripts/soak.py

## Faults under load against the release proxy; FAULTS_SECONDS (default 120).
# Upstream killed/restarted, slow, reset mid-body, client aborts, SIGHUP with valid and
# invalid confs.
faults: deps
	$(SWIFT) build -c release
	@scripts/faults.py

## Formats Sources and Tests in place (swift format).
fmt:
	$(SWIFT) format -i -r Sources Tests

## swift format lint --strict on Sources and Tests (make fmt fixes it); every target described.
lint:
	$(SWIFT) format lint --strict -r Sources Tests
	@! awk '$(help_awk)' $(firstword $(MAKEFILE_LIST)) | grep -F '(no description)' \
	  || { echo "Makefile: every target needs a '## description' line above it" >&2; exit 1; }

## Removes the build directories (.build, and .build-static from the container check).
clean:
	rm -rf .build .build-static
