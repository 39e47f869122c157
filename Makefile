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

bench: test-deps build
	bash bench/run.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin
