# cors-proxy: the two commands a newcomer needs are `make run` and `make test`.
SWIFT ?= swift

.PHONY: build release run test test-unit test-browser bench fmt lint clean deps

deps:
	@scripts/ensure-deps.sh build

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## Starts the demo API and the proxy with proxy.conf.example in front of it.
run: deps
	@scripts/run-demo.sh

## Every test: unit, integration (real sockets, real upstream process).
test:
	@scripts/ensure-deps.sh test
	$(SWIFT) test

## Benchmark: cors-proxy vs nginx vs Go+rs/cors on 2 pinned cores (~14 min).
## Knobs: ROUNDS=3 DURATION=10s SCENARIOS=... TARGETS=... (see bench/run.sh).
bench:
	@bench/run.sh

fmt:
	$(SWIFT) format -i -r Sources Tests

lint:
	$(SWIFT) format lint --strict -r Sources Tests

clean:
	rm -rf .build
