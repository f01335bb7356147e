#!/usr/bin/env bash
# `make chaos`: the long version of the acceptance suite's crash and HA
# tests. Every rotation kind (admin, self, rotate-root) is crashed in every
# window (before the request leaves, in flight, applied but unanswered,
# answered but not stored, stored but WAL not deleted) in every mode (kill
# -9 of Vault, of the plugin alone, and twice: again during the recovery),
# and the 3-node HA test fails over twice. `make test` runs one crash per
# window. Verbose, so the tables of settle and failover times are printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VAULT_BIN="$(scripts/build-vault.sh)"
export VAULT_BIN
export CHAOS=all
echo "go test -count=1 -v -run 'TestChaos|TestHA' ./acceptance/ -timeout 150m ${GOTESTFLAGS:-}"
# shellcheck disable=SC2086 # GOTESTFLAGS is a list of flags.
go test -count=1 -v -run 'TestChaos|TestHA' ./acceptance/ -timeout 150m ${GOTESTFLAGS:-}
