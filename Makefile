# Every target is a one-liner; the logic lives in scripts/.
VERSION ?= $(shell cat VERSION 2>/dev/null || echo v0.1.0)
PLUGIN := vault-plugin-secrets-salesforce
LDFLAGS := -X github.com/vault-salesforce/vault-plugin-secrets-salesforce.Version=$(VERSION)

.PHONY: build emulator vault test test-unit chaos fmt fmtcheck vet dev bench fuzz

# bin/vault-plugin-secrets-salesforce, static, reporting $(VERSION) to Vault.
build:
	CGO_ENABLED=0 go build -buildvcs=false -ldflags "$(LDFLAGS)" -o bin/$(PLUGIN) ./cmd/$(PLUGIN)

# bin/salesforce-emulator, the standalone Salesforce org emulator.
emulator:
	CGO_ENABLED=0 go build -buildvcs=false -o bin/salesforce-emulator ./cmd/salesforce-emulator

# Prints the Vault binary to use (VAULT_BIN, PATH, or bin/vault built from tools/vault).
vault:
	@scripts/build-vault.sh

# All tests: gofmt check, go vet, unit tests and the acceptance suite against a real Vault.
test:
	@scripts/test.sh

# Unit tests only: everything but the acceptance suite, which -short skips; needs no Vault.
test-unit:
	go test -short ./...

# The long crash and HA tests: every rotation step x crash mode x kind, two failovers.
chaos:
	@scripts/chaos.sh

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './bin/*' -not -path './tools/*')

fmtcheck:
	@scripts/gofmtcheck.sh

vet:
	go vet ./...

# A Vault dev server with the plugin registered, pointed at the bundled emulator (Ctrl-C stops all).
dev:
	@scripts/dev.sh

# Benchmarks that compare two variants side by side in one run and print their ratio:
# the in-process Go benchmarks, then the real-Vault driver (bench/vaultbench: the plugin
# against a no-op plugin and KV-v2 on one dev server, and issue 12's scale targets).
# Flags go in BENCHFLAGS, e.g. make bench BENCHFLAGS="-full" or BENCHFLAGS="-phases reads -pprof";
# see docs/performance.md. Uses VAULT_BIN like make test.
BENCHFLAGS ?=
bench:
	go test -run '^$$' -bench . -benchmem .
	go run ./bench/vaultbench $(BENCHFLAGS)

# Every fuzz target for FUZZTIME (default 30s) each, one after another, with executions per target.
fuzz:
	@scripts/fuzz.sh
