#!/usr/bin/env bash
# `make fuzz`: runs every Go fuzz target of the module for FUZZTIME each, one
# after another (go test -fuzz takes one target per run), and prints the
# executions of each. Plain `go test` (and so `make test`) already runs every
# target's seed corpus; this explores beyond it.
#
#   FUZZTIME          time per target (default 30s; go test syntax, e.g. 2m or 5000x)
#   FUZZMINIMIZETIME  how long to shrink each new interesting input (default 200x,
#                     i.e. 200 runs): the engine's execs leave minimising out,
#                     and with go test's 60s default a target finding many new
#                     inputs would spend its whole FUZZTIME shrinking them
#   FUZZPARALLEL      fuzzing workers per target (default: go test's, GOMAXPROCS)
#   FUZZTARGETS       a regexp to run only some targets, e.g. 'SOAP|Path'
#
# A failing input is written to <package>/testdata/fuzz/<target>/ by go test;
# commit it only with the fix (it becomes part of the seed corpus). The
# script runs every target even after a failure and exits 1 at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${FUZZTIME:-30s}
minimize=${FUZZMINIMIZETIME:-200x}
filter=${FUZZTARGETS:-.}
parallel=()
if [ -n "${FUZZPARALLEL:-}" ]; then parallel=(-parallel "$FUZZPARALLEL"); fi

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

# Packages with fuzz targets, and their targets.
mapfile -t files < <(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v -e '^./tools/' -e '^./bin/' | sort)
declare -a rows=()
failed=0
for pkg in $(printf '%s\n' "${files[@]}" | xargs -n1 dirname | sort -u); do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed 's/^func //' | sort -u); do
    if ! grep -Eq "$filter" <<<"$target"; then continue; fi
    log="$logdir/$target.log"
    echo "== $pkg $target (FUZZTIME=$fuzztime)"
    start=$SECONDS
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" \
        "${parallel[@]}" "$pkg" >"$log" 2>&1; then
      result=ok
    else
      result=FAIL
      failed=1
      grep -A20 -e '--- FAIL' -e 'Failing input' "$log" || tail -20 "$log"
    fi
    # The last progress line: "fuzz: elapsed: 30s, execs: 12345 (411/sec), new interesting: 3 (total: 120)".
    last=$(grep -o 'execs: [0-9]* ([0-9]*/sec), new interesting: [0-9]* (total: [0-9]*)' "$log" | tail -1 || true)
    execs=$(sed -n 's/^execs: \([0-9]*\).*/\1/p' <<<"$last")
    interesting=$(sed -n 's/.*new interesting: \([0-9]*\) (total: \([0-9]*\)).*/\1 new, \2 in corpus/p' <<<"$last")
    if [ -z "$execs" ] && [ "$result" = FAIL ]; then execs="-"; interesting="failed on a seed or cached input"; fi
    rows+=("$(printf '%-12s %-28s %10s  %-34s %5ss  %s' "$pkg" "$target" "${execs:-?}" "${interesting:-?}" "$((SECONDS - start))" "$result")")
  done
done

echo
printf '%-12s %-28s %10s  %-34s %6s  %s\n' package target execs 'interesting inputs' time result
printf '%s\n' "${rows[@]}"
exit "$failed"
