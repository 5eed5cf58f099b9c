#!/usr/bin/env bash
# Redis backend vs the embedded store vs raw Redis GET/SET of the same bytes,
# at the store level, one run, same parallel load (origin/store/redis/bench_test.go).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "bench-redis: redis-server is not installed; skipped"; exit 0; }
out=$(go test ./origin/store/redis -run '^$' -bench 'Get|Patch' -benchtime "${BENCHTIME:-20000x}" -count 1)
echo "$out" | grep -E '^Benchmark'
ns() { echo "$out" | awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" {print $3}'; }
rt() { echo "$out" | awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" {for (i=1;i<=NF;i++) if ($i=="roundtrips/op") print $(i-1)}'; }
echo
printf '%-34s %12s %14s %16s\n' "operation" "ns/op" "vs raw Redis" "Redis commands/op"
for op in Get Patch; do
  rawname=BenchmarkGet/raw-redis-GET; [ $op = Patch ] && rawname=BenchmarkPatch/raw-redis-SET
  raw=$(ns $rawname)
  for be in redis-store-cached redis-store-uncached pebble-store; do
    v=$(ns Benchmark$op/$be)
    printf '%-34s %12s %13.2fx %16s\n' "$op $be" "$v" "$(awk -v a="$raw" -v b="$v" 'BEGIN{print a/b}')" "$(rt Benchmark$op/$be)"
  done
  printf '%-34s %12s %14s %16s\n' "$op raw Redis" "$raw" "1.00x" "1"
done
