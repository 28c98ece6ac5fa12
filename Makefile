# lvsd — see README.md. `make lab` shows lvsd at work; `make test` runs every test.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
FUZZTIME ?= 30s
# Root runs the real-kernel tiers too (network namespaces, the qemu lab).
LVSD_INTEGRATION ?= $(shell [ "$$(id -u)" = 0 ] && echo 1)
export LVSD_INTEGRATION

.PHONY: all deps build test unit fuzz bench lab clean man deb

all: build

deps:
	@./scripts/deps.sh

build:
	CGO_ENABLED=0 $(GO) build -o bin/lvsd .

# Every test: formatting, vet, unit + netns + VM tiers, then bounded fuzzing.
test: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -timeout 40m -count=1 ./...
	$(MAKE) --no-print-directory fuzz

unit:
	LVSD_INTEGRATION= $(GO) test -count=1 ./...

# Each fuzz target runs for FUZZTIME (go test -fuzz takes one target at a time).
# A bare "context deadline exceeded" with no failing input is Go 1.26's
# coordinator race at the -fuzztime deadline (golang/go#75804), not a finding.
fuzz:
	@set -eo pipefail; for t in conf:FuzzLex conf:FuzzParse vrrp/advert:FuzzDecode; do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  if grep -qs "func $$fn(" $$pkg/*_test.go; then \
	    echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
	    out=$$($(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) 2>&1) || \
	    if echo "$$out" | grep -qx '    context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
	      echo "$$fn: the -fuzztime deadline race of Go's fuzz coordinator (golang/go#75804, fixed in Go 1.27), no failing input written: not a failure"; \
	    else echo "$$out" | grep -v '^fuzz: elapsed'; exit 1; fi; \
	    echo "$$out" | tail -n 3; \
	  fi; \
	done

# Benchmarks side by side with keepalived (Markdown on stdout, for docs/BENCHMARKS.md).
bench: deps
	./scripts/bench.sh
	./scripts/bench-failover.sh
	./scripts/bench-memory.sh
	./scripts/bench-vrrp-scale.sh
	./scripts/bench-ipvs.sh
	./scripts/bench-soak.sh

# The man pages, generated from the Markdown manual (a test fails when the
# committed ones are stale).
man:
	$(GO) run ./internal/manpage/genman -o packaging/man

# The Debian package (dpkg-deb; version from git): bin/lvsd_VERSION_ARCH.deb.
deb:
	./packaging/deb/build.sh bin

lab: deps
	$(GO) run ./integration/cmd/lab

clean:
	rm -rf bin
