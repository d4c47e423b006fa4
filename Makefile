SHELL   := /bin/bash
GO      ?= go
BIN     := bin
PLUGINS := $(notdir $(wildcard plugins/*))
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/pgimaged/pgimaged/core/cli.Version=$(VERSION)
TESTLOG ?= $(CURDIR)/.test.log
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

.PHONY: build package proto test test-package test-go test-sim test-fuzz test-example bench bench-clone bench-bootstrap bench-cluster bench-api bench-rejoin bench-switchover bench-standby demo demo-stop vet clean

## build: bin/pgimaged and bin/plugins/pgimaged-plugin-<name> for every plugin
build:
	@mkdir -p $(BIN)/plugins
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/pgimaged ./cmd/pgimaged
	@for p in $(PLUGINS); do \
	  if ls plugins/$$p/*.go >/dev/null 2>&1; then \
	    echo "$(GO) build -o $(BIN)/plugins/pgimaged-plugin-$$p ./plugins/$$p"; \
	    $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/plugins/pgimaged-plugin-$$p ./plugins/$$p || exit 1; \
	  fi; \
	done
	@chmod 0755 $(BIN) $(BIN)/plugins

## package: bin/pgimaged_<version>_amd64.deb (nfpm, see packaging/): pgimaged in /usr/bin, the
## plugins in /usr/lib/pgimaged/plugins, systemd units, /etc/pgimaged/pgimaged.hcl.
## PKGVERSION and PKGOUT override the package's version and file.
PKGBIN     := $(BIN)/deb
PKGVERSION ?= $(VERSION)
PKGOUT     ?= $(CURDIR)/$(BIN)/pgimaged_$(PKGVERSION)_amd64.deb
PKGLDFLAGS := -s -w -X github.com/pgimaged/pgimaged/core/cli.Version=$(PKGVERSION) -X github.com/pgimaged/pgimaged/core/plugin.packagedDir=/usr/lib/pgimaged/plugins
package:
	@mkdir -p $(PKGBIN)/plugins
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(PKGLDFLAGS)' -o $(PKGBIN)/pgimaged ./cmd/pgimaged
	@for p in $(PLUGINS); do \
	  if ls plugins/$$p/*.go >/dev/null 2>&1; then \
	    echo "$(GO) build -o $(PKGBIN)/plugins/pgimaged-plugin-$$p ./plugins/$$p"; \
	    GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(PKGLDFLAGS)' -o $(PKGBIN)/plugins/pgimaged-plugin-$$p ./plugins/$$p || exit 1; \
	  fi; \
	done
	cd packaging && $(GO) run . -version '$(PKGVERSION)' -bin $(CURDIR)/$(PKGBIN) -out '$(PKGOUT)'

## proto: regenerate sdk/pluginpb and the barman example's Python stubs from sdk/proto (needs protoc and grpc_python_plugin: apt-get install protobuf-compiler protobuf-compiler-grpc)
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	protoc -I sdk/proto \
	  --go_out=sdk/pluginpb --go_opt=paths=source_relative \
	  --go-grpc_out=sdk/pluginpb --go-grpc_opt=paths=source_relative \
	  pgimaged/plugin/v2/plugin.proto
	mv sdk/pluginpb/pgimaged/plugin/v2/*.go sdk/pluginpb/
	rm -rf sdk/pluginpb/pgimaged
	mkdir -p examples/plugins/barman/gen
	protoc -I sdk/proto \
	  --python_out=examples/plugins/barman/gen \
	  --grpc_out=examples/plugins/barman/gen --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
	  $(patsubst sdk/proto/%,%,$(wildcard sdk/proto/pgimaged/plugin/v*/plugin.proto))

## vet: the main module, the sdk module and the example plugin's module
vet:
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...
	cd examples/plugins/copydir && $(GO) vet ./...
	$(GO) vet -tags debpkg ./internal/debpkg
	cd packaging && $(GO) vet ./...

## test: everything, against real PostgreSQL, pg_basebackup, pgBackRest and etcd.
## Under CI=true a missing component fails its test, and any skipped test fails the run.
test: build vet test-go test-fuzz test-example test-package

test-go:
	@set -o pipefail; \
	( $(GO) test -count=1 -timeout 60m -v ./...; a=$$?; cd sdk && $(GO) test -count=1 -timeout 10m -v ./...; b=$$?; exit $$((a | b)) ) 2>&1 | tee $(TESTLOG) \
	  | grep --line-buffered -E '^(=== RUN|--- (PASS|SKIP)|    --- (PASS|SKIP))' -v ; \
	status=$${PIPESTATUS[0]}; \
	passed=$$(grep -cE '^\s*--- PASS' $(TESTLOG)); failed=$$(grep -cE '^\s*--- FAIL' $(TESTLOG)); \
	skipped=$$(grep -cE '^\s*--- SKIP' $(TESTLOG)); \
	if [ "$$skipped" -gt 0 ]; then echo "Skipped tests:"; grep -E '^\s*--- SKIP' -A2 $(TESTLOG); fi; \
	echo "$$passed passed, $$failed failed, $$skipped skipped"; \
	if [ "$(CI)" = "true" ] && [ "$$skipped" -gt 0 ]; then echo "CI=true: a skipped test is a failure"; exit 1; fi; \
	exit $$status

## test-sim: a long soak of the simulator (the agent's real Step, many members, DCS and
## PostgreSQL faults): N randomized schedules (make test-sim N=100000); `make test` runs 100.
## A failing schedule prints as a list of events with the seed that replays it.
N ?= 10000
test-sim:
	@set -o pipefail; $(GO) test -count=1 -timeout 0 -run '^TestInvariantsUnderFaults$$' ./core/engine/ -rapid.checks=$(N) -v 2>&1 | grep -v '^=== '

## test-fuzz: each fuzz target for a number of inputs (a few seconds each here), not for a time:
## with a time, Go 1.26's fuzzing coordinator can report its own deadline as a failure ("context
## deadline exceeded", no input written) when a loaded machine's worker is mid-input at the end.
## FUZZ_SCALE multiplies the counts (make test-fuzz FUZZ_SCALE=100 for a long run).
FUZZ_SCALE ?= 1
test-fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $$((20000 * $(FUZZ_SCALE)))x ./core/config/
	$(GO) test -run '^$$' -fuzz '^FuzzRenderValue$$' -fuzztime $$((20000 * $(FUZZ_SCALE)))x ./core/config/
	$(GO) test -run '^$$' -fuzz '^FuzzNesting$$' -fuzztime $$((1500 * $(FUZZ_SCALE)))x ./core/config/
	cd sdk && $(GO) test -run '^$$' -fuzz '^FuzzSplitCommand$$' -fuzztime $$((20000 * $(FUZZ_SCALE)))x .

test-example:
	cd examples/plugins/copydir && $(GO) test -count=1 ./...

## test-package: builds two packages, installs, upgrades, removes and purges pgimaged with dpkg
## (as root; it leaves the machine as it found it). Alone: an installed lock file in /etc/pgimaged
## applies to every pgimaged run without a configuration.
test-package:
	$(GO) test -tags debpkg -count=1 -timeout 30m -v -run '^TestDebianPackage$$' ./internal/debpkg

## bench: speed, measured side by side (see README): plugin start-up and configuration parse
## time, then clone, bootstrap, cluster, api, rejoin, switchover and standby of examples/bench (go
## run ./examples/bench -h). One piece alone: make bench-clone, bench-bootstrap, bench-cluster,
## bench-api, bench-rejoin, bench-switchover or bench-standby, with
## BENCHFLAGS for its flags, e.g. make bench-cluster BENCHFLAGS='-runs 1 -members 3'.
bench: build
	$(GO) test -run '^$$' -bench 'BenchmarkLaunch' -benchtime 20x ./core/plugin/
	$(GO) test -run '^$$' -bench 'BenchmarkParse' -benchtime 5x ./core/config/
	$(GO) run ./examples/bench clone
	$(GO) run ./examples/bench bootstrap
	$(GO) run ./examples/bench cluster
	$(GO) run ./examples/bench api
	$(GO) run ./examples/bench rejoin
	$(GO) run ./examples/bench switchover
	$(GO) run ./examples/bench standby

bench-clone bench-bootstrap bench-cluster bench-api bench-rejoin bench-switchover bench-standby: bench-%: build
	$(GO) run ./examples/bench $* $(BENCHFLAGS)

## demo: three members on this host with the embedded file DCS
demo: build
	./examples/demo/demo.sh

demo-stop:
	./examples/demo/demo-stop.sh

clean:
	rm -rf $(BIN) $(TESTLOG)
