# Tandem: `make run` starts the server with the demo; `make test` runs every test.
GO       ?= go
FUZZTIME ?= 5s
export PATH := $(PATH):/usr/local/go/bin

.PHONY: run test fmtcheck vet gotest fuzz-short fuzz bench build clean

run:
	$(GO) run ./cmd/tandem serve

build:
	$(GO) build -o bin/tandem ./cmd/tandem

test: fmtcheck vet gotest fuzz-short

fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

gotest:
	$(GO) test -race -timeout 15m ./...

# Each fuzz target for a few seconds, as part of make test.
fuzz-short:
	scripts/fuzz.sh $(FUZZTIME)

# Longer fuzzing, still bounded: make fuzz FUZZTIME=10m
fuzz:
	scripts/fuzz.sh $(if $(filter 5s,$(FUZZTIME)),60s,$(FUZZTIME))

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin tandem-data
