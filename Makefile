# cors-proxy: the two commands a newcomer needs are `make run` and `make test`.
SWIFT ?= swift

.PHONY: build release run test test-unit test-browser bench fuzz soak faults fmt lint clean deps

deps:
	@scripts/ensure-deps.sh build

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## Starts the demo API, the demo page (http://127.0.0.1:5173) and the proxy with proxy.conf.example.
run: deps
	@scripts/run-demo.sh

## Every test: unit, integration (real sockets, real upstream process), browser
## (headless Chromium), and the container checks (no Docker engine needed).
test:
	@scripts/ensure-deps.sh test
	@$(MAKE) --no-print-directory lint
	@scripts/check-container.sh
	$(SWIFT) test

## Only the headless-Chromium end-to-end tests (Tests/BrowserTests).
test-browser:
	@scripts/ensure-deps.sh test
	$(SWIFT) test --filter BrowserTests

## Benchmark: cors-proxy vs nginx vs Go+rs/cors on 2 pinned cores (~14 min).
## Knobs: ROUNDS=3 DURATION=10s SCENARIOS=... TARGETS=... (see bench/run.sh).
bench:
	@bench/run.sh

## Conf-parser fuzzing (libFuzzer + ASan, fuzz/conf): FUZZ_SECONDS (default 120); CONF_FUZZ_MODE=slots.
## Fails on a crash, an input slower than 1 s, or a leak.
fuzz:
	@scripts/fuzz.sh

## Soak: steady mixed traffic through the release proxy; RSS/FD samples every 10 s go to
## docs/RELIABILITY.md. SOAK_SECONDS (default 600), SOAK_RATE (requests/s, default 200).
soak: deps
	$(SWIFT) build -c release
	@scripts/soak.py

## Faults under load (upstream killed/restarted, slow, reset mid-body, client aborts, SIGHUP
## with valid and invalid confs) against the release proxy. FAULTS_SECONDS (default 120).
faults: deps
	$(SWIFT) build -c release
	@scripts/faults.py

fmt:
	$(SWIFT) format -i -r Sources Tests

lint:
	$(SWIFT) format lint --strict -r Sources Tests

clean:
	rm -rf .build
