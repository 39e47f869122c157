# meshlens — make build | test | demo | bench | lint | fuzz
SHELL := /bin/bash
GO ?= go
export PATH := $(CURDIR)/.tools/bin:$(PATH)

PKGS := ./...
FUZZTIME ?= 10s

.PHONY: all build test test-deps demo bench lint fuzz clean

all: build

build:
	@mkdir -p bin
	$(GO) build -o bin/meshproxy ./cmd/meshproxy
	$(GO) build -o bin/meshlens ./cmd/meshlens

# test-deps installs what the tests talk to: Debian packages and pinned Go tools.
test-deps:
	bash scripts/install-debs.sh
	bash scripts/install-tools.sh

test: test-deps build
	$(GO) test -count=1 -timeout 30m $(PKGS)

demo: build
	./bin/meshlens demo

# bench: the proxy benchmark of docs/benchmarks.md (about 12 minutes), the
# per-request telemetry path in go test -bench, the collector against a stock
# OTel Collector (about 3 minutes), HDR merge throughput, and storage. BENCHFLAGS go to the
# harness, e.g. BENCHFLAGS="-rounds 3 -only meshproxy,bare-go".
BENCHFLAGS ?=
bench: test-deps build
	@mkdir -p bin/bench
	$(GO) build -o bin/bench/ ./bench/harness ./bench/bareproxy ./bench/sink
	taskset -c 0 bin/bench/harness $(BENCHFLAGS)
	$(GO) test -run '^$$' -bench '^BenchmarkFinish$$' -benchmem -benchtime 20000x -timeout 5m ./proxy/telemetry
	bash bench/collector/run.sh
	$(GO) test -run '^$$' -bench HistogramMerge -benchtime 30x -cpu 1 -timeout 10m ./collector/e2e/
	$(GO) test -run '^$$' -bench 'Ingest|RawCopy|Percentiles24h' -benchtime 20x -timeout 20m ./store/postgres ./store/sqlite

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# fuzz runs every fuzz target for FUZZTIME each (scripts/fuzz.sh).
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

clean:
	rm -rf bin
