#!/usr/bin/env bash
# Fails, listing the files, when any Go file of the project is not gofmt-clean.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mapfile -t files < <(find . -name '*.go' -not -path './bin/*' -not -path './tools/*' -not -path './.git/*' | sort)
if [[ ${#files[@]} -eq 0 ]]; then
  exit 0
fi
unformatted="$(gofmt -l "${files[@]}")"
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed on these files (run 'make fmt'):" >&2
  echo "$unformatted" >&2
  exit 1
fi
echo "gofmt: ${#files[@]} files clean"
