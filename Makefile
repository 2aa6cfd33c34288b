# extapi — make test runs everything CI runs; make bench the benchmarks.
GO ?= go
PKGS ?= ./...

.PHONY: test fmt-check vet race fuzz build run bench services

test: fmt-check vet race

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

race:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

build:
	CGO_ENABLED=0 $(GO) build -o bin/extapi ./cmd/extapi

run:
	$(GO) run ./cmd/extapi serve

# Longer fuzz runs than the suite's seed-corpus pass; FUZZTIME per target.
FUZZTIME ?= 30s
fuzz:
	@for t in $$($(GO) test -list 'Fuzz.*' $(PKGS) | grep -E '^(Fuzz|ok)' | awk '/^Fuzz/{f=f" "$$1} /^ok/{if(f!=""){print $$2":"f}; f=""}'); do \
	  pkg=$${t%%:*}; for f in $$(echo $${t#*:} | tr ' ' '\n'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run=XXX -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; done; done

bench:
	$(GO) test -run=XXX -bench=. -benchmem $(PKGS)
