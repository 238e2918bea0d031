# director: see README.md.
GO      ?= go
# The BPF objects are committed; `make generate` rebuilds them with this
# clang, pinned so that they come out byte for byte the same.
CLANG   ?= clang-14
CFLAGS  := -O2 -g -Wall -Werror
BIN     := bin/director
GOTEST  := $(GO) test -count=1

export PATH := $(PATH):/usr/local/go/bin:$(shell $(GO) env GOPATH 2>/dev/null)/bin

.PHONY: all build test test-unit generate check-generate bench lint clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/director

# Everything: unit tests, kernel tests (BPF_PROG_TEST_RUN, attach, netlink)
# and the namespace topologies. Root tests skip only when not root.
test: build
	$(GOTEST) -timeout 20m ./...

# Plain Go tests only (no root needed).
test-unit:
	$(GOTEST) -short ./...

generate:
	cd loader && BPF_CLANG=$(CLANG) BPF_CFLAGS="$(CFLAGS)" $(GO) generate ./...

# The committed objects must be what the sources produce.
check-generate: generate
	@git diff --exit-code --stat -- loader/ || \
		{ echo "committed BPF objects are stale: run make generate and commit"; exit 1; }

# ns/packet of the XDP program next to a MAC-swap floor (BPF_PROG_TEST_RUN).
bench:
	$(GO) test -run '^$$' -bench BenchmarkDataplane -benchtime=1x ./loader/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt: $$out"; exit 1; }
	$(GO) vet ./...
	staticcheck ./...

clean:
	rm -rf bin
