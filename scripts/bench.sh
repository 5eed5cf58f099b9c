#!/usr/bin/env bash
# `make bench`: runs every component's benchmark script (scripts/bench-*.sh) in
# turn; each prints its own comparison table (docs/benchmarks.md records them).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for s in scripts/bench-*.sh; do
  echo "== $s"
  "$s" || { echo "bench: $s failed" >&2; status=1; }
  echo
done
exit $status
