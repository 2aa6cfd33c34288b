# extapi — make test runs everything CI runs; make bench the benchmarks.
GO ?= go
PKGS ?= ./...

.PHONY: test fmt-check vet build-static race allocs fuzz fuzz-short build run bench

test: fmt-check vet build-static race allocs fuzz-short

build-static:
	CGO_ENABLED=0 $(GO) build ./...

# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can fail a clean run
# with "context deadline exceeded" at the deadline (golang/go#75804, fixed in Go 1.27).
fuzz-short:
	$(MAKE) fuzz FUZZTIME=10000x

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

race:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# The allocation tests are built only without -race (it allocates); their names contain Alloc
# (cmd/extapi TestAllocTestsRunInCI holds that).
allocs:
	$(GO) test -count=1 -run 'Alloc' $(PKGS)

build:
	CGO_ENABLED=0 $(GO) build -o bin/extapi ./cmd/extapi

run:
	$(GO) run ./cmd/extapi serve

# Every fuzz target, FUZZTIME each (the seed corpora also run as plain tests in `race`).
# `make test` runs them briefly; `make fuzz FUZZTIME=5m` for a longer hunt.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

# Go benchmarks (allocations and per-stage cost), then the loopback load run that rewrites the
# generated section of docs/BENCHMARKS.md (wrk and nginx are used when installed).
LOADBENCH_DURATION ?= 10s
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS) | tee bench.out
	LOADBENCH_DURATION=$(LOADBENCH_DURATION) $(GO) test -tags loadbench -run TestLoadBench -v -count=1 -timeout 30m ./cmd/extapi/
