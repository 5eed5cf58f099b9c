#!/usr/bin/env bash
# Headline comparison (called by `make bench`): one app page served three ways
# on this machine, in one run, loaded in alternating rounds by the same Go
# load generator: behind the edge proxy with the filter (origin behind it),
# as cookie+redis (signed cookie, a redis-server GET per request), and behind
# an ext_authz-style proxy that asks the origin on every request. Every
# component is a real process on loopback; redis-server is required.
# Bounded: COMPARE_ROUNDS (7) alternating rounds of COMPARE_DURATION (2s)
# per mode, COMPARE_CONNS (32) connections.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null; then
  echo "bench-compare: redis-server is not on PATH (apt-get install redis-server): the cookie+redis mode needs it; skipped"
  exit 0
fi
echo
echo "## Headline comparison: edge vs cookie+redis vs ext_authz"
echo
echo "load before: $(uptime)"
go test -run '^$' -bench '^BenchmarkHeadline$' -benchtime 1x -count 1 ./internal/compare/ | grep -v -E '^(goos|goarch|pkg|cpu|BenchmarkHeadline|PASS|ok )'
echo
echo "load after: $(uptime)"
