#!/usr/bin/env bash
# Prints the path of a Vault server binary the project can run, building one
# if needed. Progress and timings go to stderr so callers can capture stdout:
#
#   VAULT_BIN="$(scripts/build-vault.sh)"
#
# Order of preference:
#   1. $VAULT_BIN, when set (must be executable);
#   2. a `vault` already on PATH;
#   3. bin/vault, built from the pin in tools/vault (github.com/hashicorp/vault
#      v1.13.1, exact versions in tools/vault/go.sum). The build runs once per
#      machine: it is skipped while bin/vault is newer than tools/vault/go.mod
#      and go.sum.
#
# Set VAULT_BUILD_FORCE=1 to ignore $VAULT_BIN and PATH and (re)build bin/vault.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bin/vault"
mod="$root/tools/vault/go.mod"
sum="$root/tools/vault/go.sum"

log() { printf 'build-vault: %s\n' "$*" >&2; }

if [[ "${VAULT_BUILD_FORCE:-}" != 1 ]]; then
  if [[ -n "${VAULT_BIN:-}" ]]; then
    if [[ ! -x "$VAULT_BIN" ]]; then
      log "VAULT_BIN=$VAULT_BIN is not an executable file"
      exit 1
    fi
    log "using VAULT_BIN=$VAULT_BIN"
    printf '%s\n' "$VAULT_BIN"
    exit 0
  fi
  if on_path="$(command -v vault 2>/dev/null)"; then
    log "using $on_path from PATH ($("$on_path" version 2>/dev/null | head -n1))"
    printf '%s\n' "$on_path"
    exit 0
  fi
fi

mkdir -p "$root/bin"
# Two callers (make dev in one shell, make test in another) must not build at
# the same time: the second waits and then finds the fresh binary.
exec 9>"$root/bin/.vault-build.lock"
flock 9

if [[ "${VAULT_BUILD_FORCE:-}" != 1 && -x "$out" && "$out" -nt "$mod" && "$out" -nt "$sum" ]]; then
  log "using cached $out ($("$out" version 2>/dev/null | head -n1))"
  printf '%s\n' "$out"
  exit 0
fi

log "building Vault from tools/vault/go.mod into bin/vault (once per machine; a few minutes, longer while modules download)"
start=$SECONDS
(
  cd "$root/tools/vault"
  # Resolve and download first, so the timings tell network time from compile time.
  go list -deps github.com/hashicorp/vault >/dev/null
  log "modules ready after $((SECONDS - start))s"
  go build -buildvcs=false -o "$out.tmp" github.com/hashicorp/vault
) >&2
mv -f "$out.tmp" "$out"
log "built $out in $((SECONDS - start))s ($("$out" version | head -n1))"
printf '%s\n' "$out"
