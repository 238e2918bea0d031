# director: see README.md.
GO      ?= go
# The BPF objects are committed; `make generate` rebuilds them with this
# clang, pinned so that they come out byte for byte the same.
CLANG   ?= clang-14
CFLAGS  := -O2 -g -Wall -Werror
BIN     := bin/director
GOTEST  := $(GO) test -count=1

export PATH := $(PATH):/usr/local/go/bin:$(shell $(GO) env GOPATH 2>/dev/null)/bin

.PHONY: all build demo test test-unit vmtest-kernels bench-l7 generate check-generate bench lint clean

# The kernels the XDP program is proven on: Debian 11's 5.10 (the oldest
# supported), Debian 12's 6.1 and its 6.12 (backports, security).
KERNELS ?= 5.10,6.1,6.12
KERNEL_SUITES ?= bookworm,bookworm-updates,bookworm-security,bookworm-backports,bullseye,bullseye-security

all: build

build:
	$(GO) build -o $(BIN) ./cmd/director

# The main job on an embedded default, on this machine: a namespace topology
# with a client, a director running the agent and three web servers. Root.
demo: build
	$(GO) run ./vmtests/cmd/demo -director $(BIN)

# Everything: unit tests, kernel tests (BPF_PROG_TEST_RUN, attach, netlink),
# the namespace topologies, and the kernel matrix in VMs. Root tests skip
# only when not root.
test: build
	$(GOTEST) -timeout 20m ./...
	$(MAKE) vmtest-kernels

# The loader's tests on each kernel of KERNELS, booted under qemu.
vmtest-kernels:
	$(GO) run ./vmtests/kernels -kernels $(KERNELS) -suites $(KERNEL_SUITES) \
		-pkgs ./loader,./vmtests/kernels/smoke -parallel 2

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

# The L7 tier against HAProxy on the same nginx backends, wrk at 64 and 256
# connections, interleaved runs, medians and ratios. Needs: apt-get install
# haproxy nginx wrk.
bench-l7:
	$(GO) run ./l7/bench -runs 5 -c 64,256

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt: $$out"; exit 1; }
	$(GO) vet ./...
	staticcheck ./...

clean:
	rm -rf bin
