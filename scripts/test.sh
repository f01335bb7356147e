#!/usr/bin/env bash
# The project's one test command (`make test`, also run by .ci/run):
# gofmt check, go vet, then every Go test including the acceptance suite,
# which drives a real Vault server. The Vault binary is obtained first (built
# once per machine, see scripts/build-vault.sh) so its build time is printed
# here and does not count against the go test timeout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/gofmtcheck.sh
echo "go vet ./..."
go vet ./...
# The crash tests' plugin build (chaos_pause.go) is vetted and unit-tested too.
echo "go vet -tags chaos ./... && go test -tags chaos -run TestParseChaosPauses ."
go vet -tags chaos ./...
go test -count=1 -tags chaos -run TestParseChaosPauses .

start=$SECONDS
VAULT_BIN="$(scripts/build-vault.sh)"
export VAULT_BIN
echo "vault binary: $VAULT_BIN (ready after $((SECONDS - start))s)"

# The docs walk (TestDocsWalk, see CONTRIBUTING.md) runs every command of the
# docs except blocks marked skip; go test reports skips only with -v, so they
# are listed here, with their reasons.
echo "docs walk: blocks not run (<!-- docs-walk: skip: ... -->):"
grep -n 'docs-walk: skip' README.md docs/*.md emulator/README.md |
  sed -E 's/^([^:]+:[0-9]+):.*docs-walk: skip: *(.*[^ ]) *-->.*/  \1: \2/' || echo "  none"

# -count=1: the acceptance suite builds the plugin from source in a
# subprocess, which go test's result cache cannot see, so a cached pass
# could hide a broken change.
# -parallel 4: the acceptance suite's parallel tests (crash, HA, start-up,
# ECA rotation) mostly wait on their own Vault servers and timers, not the
# CPU; four at a time halve their wall time even on two cores.
echo "go test -count=1 -parallel 4 ./... -timeout 40m ${GOTESTFLAGS:-}"
# shellcheck disable=SC2086 # GOTESTFLAGS is a list of flags, e.g. "-run TestX -v".
go test -count=1 -parallel 4 ./... -timeout 40m ${GOTESTFLAGS:-}
