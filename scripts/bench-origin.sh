#!/usr/bin/env bash
# Origin benchmarks, loopback only, bounded in time: GET session vs Redis GET
# of the same bytes (redis-server started on a free port), durable PATCH with
# 64 clients, sync long-poll latency, then the Go micro-benchmarks.
# ORIGIN_BENCH_MANY=1000000 adds the (slow) many-sessions RSS/disk step.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bin
go build -o build/bin/origin ./origin/cmd/origin
go build -o build/bin/origin-bench ./origin/cmd/origin-bench
build/bin/origin-bench -origin build/bin/origin -c "${ORIGIN_BENCH_CLIENTS:-64}" -d "${ORIGIN_BENCH_DURATION:-3s}" -sessions 10000
if [ -n "${ORIGIN_BENCH_MANY:-}" ]; then
  build/bin/origin-bench -origin build/bin/origin -c 64 -many "$ORIGIN_BENCH_MANY"
fi
echo
go test -run '^$' -bench 'GetHit|CommitParallel|GetHandler$|PatchHandlerParallel' -benchtime "${BENCHTIME:-1s}" -count 1 \
  ./origin/store/pebble ./origin/server | grep -E '^Benchmark'
