# Tandem: `make run` starts the server with the demo; `make test` runs every test.
GO       ?= go
# make test fuzzes each target for a fixed count of inputs (no wall-clock
# deadline to race, see scripts/fuzz.sh); make fuzz for a duration.
FUZZCOUNT ?= 10000x
FUZZTIME ?= 60s
export PATH := $(PATH):/usr/local/go/bin

.PHONY: run setup test fmtcheck vet gotest jstest fuzz-short fuzz bench gobench build clean

run:
	$(GO) run ./cmd/tandem serve

build:
	$(GO) build -o bin/tandem ./cmd/tandem

# Everything: format, vet, Go tests with -race (the browser tests included),
# each fuzz target briefly, the JavaScript client against a real server.
test: setup fmtcheck vet gotest fuzz-short jstest

# Installs what the tests need on a fresh machine (quick when it is there).
setup:
	scripts/setup.sh

fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

gotest:
	$(GO) test -race -timeout 15m ./...
	$(GO) test -run 'TestIdleConnectionStack' ./server # stack sizes: without -race

# The JavaScript client's tests (node --test) and type check.
jstest:
	scripts/test-js.sh

# Each fuzz target for a few thousand inputs, as part of make test.
fuzz-short:
	scripts/fuzz.sh $(FUZZCOUNT)

# Longer fuzzing, still bounded: make fuzz FUZZTIME=10m
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

# A short run of every tandem bench scenario (under 3 minutes); figures in
# bench/results.json.
bench:
	mkdir -p bench
	$(GO) run ./cmd/tandem bench all --json bench/results.json

# Every Go benchmark.
gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin tandem-data
