#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 60s) and
# prints the exec count of each. New failing inputs land in the package's
# testdata/fuzz, where `go test` keeps running them as seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-60s}
status=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    out=$(go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel "${FUZZPARALLEL:-1}" 2>&1) || status=1
    execs=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1)
    printf '%-60s %-28s %s\n' "$pkg" "$target" "${execs:-failed}"
    [ $status -eq 0 ] || { echo "$out" | tail -20; exit 1; }
  done
done
