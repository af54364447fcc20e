# mcpgate: common developer and CI entry points. .ci/run calls `make test`.

GO ?= go
# go.mod's toolchain line names the Go release whose standard library has every security
# fix we know of (`make vulncheck`); auto lets the go command fetch it when the machine's
# Go is older, even where the installation or the environment says local (the golang
# images set GOTOOLCHAIN=local). `make GOTOOLCHAIN=local …` builds with the machine's Go.
GOTOOLCHAIN := auto
export GOTOOLCHAIN
# Where scripts/install-tools.sh puts Node 22 and the MCP conformance suite; e2e tests
# read it (and $(MCPGATE_TOOLS)/env.sh) to find them.
MCPGATE_TOOLS ?= $(CURDIR)/.tools
export MCPGATE_TOOLS
FUZZTIME ?= 10s
FUZZPKGS ?= ./...

.PHONY: all test tools vet vulncheck build bench fuzz fuzz-long run clean

all: build

tools:
	scripts/install-tools.sh

# bench/ is a module of its own (the load harness, see docs/benchmarks.md): ./... at the
# root does not enter it, so it is vetted and tested here by name.
vet:
	$(GO) vet ./...
	$(GO) -C bench vet ./...

# env.sh also exports NODE22, CONFORMANCE, TSSDK_DIR, INSPECTOR_CLI, EVERYTHING_STDIO, EVERYTHING_SERVER
# and OIDC_PROVIDER_DIR (printed by install-tools.sh).
test: tools vet vulncheck
	. "$(MCPGATE_TOOLS)/env.sh" && $(GO) test -race -count=1 -timeout 15m ./...
	$(GO) -C bench test -race -count=1 -timeout 5m ./...

# govulncheck over both modules against a pinned copy of the Go vulnerability database
# (scripts/vulncheck.sh says how to move it on).
vulncheck:
	GO=$(GO) scripts/vulncheck.sh

# The version `mcpgate version` and the start banner print: the checkout's tag or commit
# (`dev` outside a git checkout). make build VERSION=1.2.3 names another.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -trimpath -ldflags "-X github.com/mcpgate/mcpgate/internal/app.Version=$(VERSION)" -o bin/mcpgate ./cmd/mcpgate

# The Go benchmarks of mcpgate's packages. The load harness is run by hand, from its own
# module: `go -C bench run ./mcpload` (or ./flowload); docs/benchmarks.md has the options.
bench:
	$(GO) test -run=NONE -bench=. -benchmem ./...

# Every fuzz target, $(FUZZTIME) each (10 s): a smoke run, not part of `make test`.
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh $(FUZZPKGS)

# Every fuzz target for 10 minutes, not in CI. FUZZJOBS=4 runs four at a time (with
# FUZZPARALLEL=1, one worker each); FUZZLOG=DIR keeps each target's output.
fuzz-long:
	FUZZTIME=10m GO=$(GO) scripts/fuzz.sh $(FUZZPKGS)

run:
	$(GO) run ./cmd/mcpgate serve

clean:
	rm -rf bin
