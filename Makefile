# pamtrail — see README.md. The two commands a new machine needs:
#   make run    bring up local services, start the collector and the gateway (quickstart)
#   make test   every test, against real PostgreSQL, OpenSSH and Elasticsearch
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := build

GO          ?= go
GOBIN       ?= $(shell $(GO) env GOPATH)/bin
OCB_VERSION := v0.156.0
BUILDER     := $(GOBIN)/builder
MDATAGEN    := $(GOBIN)/mdatagen
# Components whose internal/metadata, generated tests and documentation.md
# mdatagen writes from metadata.yaml (make generate).
MDATAGEN_COMPONENTS := collector-components/processor/sessionprocessor collector-components/extension/encryptedstorage
# The checksum-DB lookup of this one collector dependency fails here; the
# module proxy still verifies it against go.sum of the generated module.
export GONOSUMDB := go.opentelemetry.io/ebpf-profiler
export GOFLAGS   := -buildvcs=false
export PAMTRAIL_HOME ?= $(CURDIR)/.pamtrail
# One version for the binaries and the images: the collector distribution's.
VERSION     := $(shell sed -n 's/^  version: *//p' builder-config.yaml)

SERVICES    := deploy/local/services.sh
GO_SOURCES  := $(shell find gateway collector-components dashboards -name '*.go' -not -path '*/testdata/*' 2>/dev/null) go.mod go.sum
TEST_TIMEOUT ?= 18m
# The end-to-end packages run every fault campaign's short version and
# 100,000-statement backlogs against the real stack.
INTEGRATION_TIMEOUT ?= 45m
# Packages whose tests start real services run without -race: the race
# detector slows them several-fold on two cores and they are exercised
# end to end; every other package runs with -race.
INTEGRATION_PKGS := ./gateway/e2e/... ./collector-components/e2e/...

.PHONY: build run test test-unit test-integration test-deploy compose-up compose-down install-systemd bench soak fuzz services services-down tools clean images generate

build: bin/pamtrail bin/otelcol-pamtrail

bin/pamtrail: $(GO_SOURCES)
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $@ ./gateway/cmd/pamtrail

$(BUILDER):
	$(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

# `go install mdatagen@v0.156.0` fails: the module proxy serves the version
# but no version list, which go install's deprecation check reads. Building
# it from a throwaway module that requires it works.
$(MDATAGEN):
	d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && cd "$$d" && \
	printf 'module tools\n\ngo 1.26\n\nrequire go.opentelemetry.io/collector/cmd/mdatagen %s\n' $(OCB_VERSION) > go.mod && \
	GOFLAGS=-mod=mod $(GO) build -o $(MDATAGEN) go.opentelemetry.io/collector/cmd/mdatagen

tools: $(BUILDER) $(MDATAGEN)

generate: $(MDATAGEN)
	for c in $(MDATAGEN_COMPONENTS); do (cd $$c && $(MDATAGEN) metadata.yaml) || exit 1; done

bin/otelcol-pamtrail: $(BUILDER) builder-config.yaml $(GO_SOURCES)
	$(BUILDER) --config builder-config.yaml
	@mkdir -p bin && cp _build/otelcol-pamtrail $@.tmp && mv -f $@.tmp $@

services:
	$(SERVICES) up all

# pamtrail:$(VERSION) and otelcol-pamtrail:$(VERSION), FROM scratch (deploy/images/).
images: bin/otelcol-pamtrail
	$(SERVICES) up docker
	deploy/images/build.sh $(VERSION)

# The deploy paths: both images, the compose stack end to end (third-party
# images replaced by local stand-ins), the systemd units, the Helm chart.
STANDINS_ENV := $(PAMTRAIL_HOME)/compose-standins.env
test-deploy: images
	command -v systemd-analyze >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd >/dev/null; }
	deploy/compose/standins/build.sh >$(STANDINS_ENV).tmp && mv -f $(STANDINS_ENV).tmp $(STANDINS_ENV)
	PAMTRAIL_STANDINS_ENV=$(STANDINS_ENV) $(GO) test -count=1 -timeout 15m ./deploy/compose/ ./deploy/systemd/
	cd deploy/helm && $(GO) test -count=1 -timeout 10m ./...

# The compose stack (deploy/compose/) on this machine: images, secrets, up.
compose-up: images
	PAMTRAIL_VERSION=$(VERSION) deploy/compose/secrets.sh
	PAMTRAIL_VERSION=$(VERSION) docker-compose -f deploy/compose/docker-compose.yml up -d

compose-down:
	PAMTRAIL_VERSION=$(VERSION) docker-compose -f deploy/compose/docker-compose.yml down

# The gateway and the collector as hardened systemd services on this host.
install-systemd: build
	deploy/systemd/install.sh

services-down:
	$(SERVICES) down all

run: build
	deploy/local/quickstart.sh

test: build services
	$(MAKE) -k test-unit test-integration test-deploy

test-unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v -e /gateway/e2e -e /collector-components/e2e -e /deploy/)

test-integration:
	$(GO) test -count=1 -timeout $(INTEGRATION_TIMEOUT) $(INTEGRATION_PKGS)

# Side-by-side figures from one run: pgbench -S direct vs pgbouncer vs the
# gateway recording vs recording off (PAMTRAIL_BENCH_SECONDS per run, default
# 20), the gateway recording with the hash chain and signed checkpoints vs
# with the chain off (CPU per transaction, alternating runs, 5 times),
# spool.fsync: always sessions in one event loop vs goroutines, sysbench
# oltp_read_only direct vs the mysql gateway recording and not, SSH
# throughput direct vs ProxyJump vs gateway, the component micro-benchmarks
# (spool append, recorder, session processor, uploader), and delivery:
# Elasticsearch's direct bulk rate vs the whole path sustained and draining a
# 1,000,000-record backlog, event -> searchable, peak RSS.
bench: build
	$(SERVICES) up postgres pgbouncer sshd mariadb elasticsearch
	@mkdir -p $(PAMTRAIL_HOME)
	$(GO) test -run '^$$' -bench '^Benchmark(Pgbench|IdleSessionMemory|LargeResultMemory|FsyncAlwaysEventLoop)$$' -benchtime 1x -timeout 30m ./gateway/postgres/ | tee $(PAMTRAIL_HOME)/bench-postgres.txt
	$(GO) test -run '^$$' -bench '^BenchmarkPgbenchChainCost$$' -benchtime 1x -count 3 -timeout 30m ./gateway/postgres/ | tee $(PAMTRAIL_HOME)/bench-chain.txt
	$(GO) test -run '^$$' -bench '^BenchmarkSysbench$$' -benchtime 1x -timeout 20m ./gateway/mysql/ | grep -v 'level=' | tee $(PAMTRAIL_HOME)/bench-mysql.txt
	$(GO) test -run '^$$' -bench 'SSHThroughput' -benchtime 1x -timeout 20m ./gateway/ssh/ | tee $(PAMTRAIL_HOME)/bench-ssh.txt
	$(GO) test -run '^$$' -bench '^BenchmarkTerminateLatency$$' -benchtime 200x ./gateway/postgres/ | grep -E '^(Benchmark|ok|FAIL)' | tee $(PAMTRAIL_HOME)/bench-control.txt
	PAMTRAIL_BENCH_BACKLOG_MB=1024 $(GO) test -run '^$$' -bench . -benchmem ./gateway/spool/ ./gateway/recorder/ ./gateway/redact/ ./collector-components/... | tee $(PAMTRAIL_HOME)/bench-components.txt
	$(GO) test -run '^$$' -bench '^Benchmark(DecodeText|TrackerPgbenchSelect)$$' -benchmem -count 5 ./gateway/postgres/ | tee -a $(PAMTRAIL_HOME)/bench-components.txt
	$(GO) test -run '^$$' -bench '^Benchmark(Convert|Decode|LogsCodec|UploadBacklog)$$' -benchmem ./gateway/uploader/ | tee -a $(PAMTRAIL_HOME)/bench-components.txt
	$(SERVICES) up elasticsearch
	$(GO) test -run '^$$' -bench '^Benchmark(Delivery|UpstreamFloor|Fairness)$$' -benchtime 1x -timeout 90m ./gateway/e2e/ | tee $(PAMTRAIL_HOME)/bench-delivery.txt

soak: build services
	PAMTRAIL_SOAK=1 $(GO) test -v -count=1 -timeout 150m -run 'Campaign' ./gateway/e2e/... | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|campaign'

fuzz:
	deploy/local/fuzz.sh

clean:
	rm -rf bin _build
