#!/usr/bin/env bash
# Edge benchmarks (called by `make bench`): host-call overhead, per-request
# cost of the filter through the wazero host, and edge proxy throughput with
# the filter on vs off against the same upstream in one run, on loopback.
# Bounded: EDGE_BENCH_ROUNDS alternating rounds of EDGE_BENCH_DURATION each.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM=build/sessionedge.wasm
# A fixed test signing key: the guest requires at least one.
DEFAULT_CONFIG='{"keys":{"1":"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="}}'
if [ ! -f "$WASM" ]; then
  echo "bench-edge: $WASM is absent (run make wasm): using the .wat conformance guest edge/testdata/conformance.wasm"
  WASM=edge/testdata/conformance.wasm
  DEFAULT_CONFIG='{}'
fi
# The plugin configuration holds token keys: it goes to the programs in a
# file (created 0600), never on a command line.
PLUGIN_CONFIG_FILE=$(mktemp)
trap 'rm -f "$PLUGIN_CONFIG_FILE"' EXIT
chmod 600 "$PLUGIN_CONFIG_FILE"
if [ -n "${EDGE_BENCH_PLUGIN_CONFIG_FILE:-}" ]; then
  cp "$EDGE_BENCH_PLUGIN_CONFIG_FILE" "$PLUGIN_CONFIG_FILE"
else
  printf '%s' "$DEFAULT_CONFIG" > "$PLUGIN_CONFIG_FILE"
fi
ABS_WASM=$(cd "$(dirname "$WASM")" && pwd)/$(basename "$WASM")

to_table() {
  # go test -bench output -> markdown rows: name | ns/op | B/op | allocs/op
  awk '/^Benchmark/ {
    name=$1; sub(/-[0-9]+$/, "", name); ns=""; by=""; al="";
    for (i=2; i<=NF; i++) { if ($i=="ns/op") ns=$(i-1); if ($i=="B/op") by=$(i-1); if ($i=="allocs/op") al=$(i-1) }
    printf "| %s | %s | %s | %s |\n", name, ns, by, al }'
}

echo
echo "## Host calls (edge/testdata/conformance.wat guest, one export calling one import; noop = no import)"
echo
echo "| benchmark | ns/op | B/op | allocs/op |"
echo "|---|---:|---:|---:|"
go test -run '^$' -bench 'HostCall|BenchmarkStream$|StreamParallel' -benchmem -count 1 ./edge/wasmhost/ | to_table

echo
echo "## Per-request cost through the host: $WASM (warm path, 1 VM)"
echo
echo "| benchmark | ns/op | B/op | allocs/op |"
echo "|---|---:|---:|---:|"
EDGE_BENCH_WASM="$ABS_WASM" EDGE_BENCH_PLUGIN_CONFIG_FILE="$PLUGIN_CONFIG_FILE" \
  go test -run '^$' -bench 'GuestRequest' -benchmem -count 1 ./edge/wasmhost/ | to_table

echo
echo "## One request through the edge on loopback, .wat guest (client and upstream in the same process)"
echo
echo "| benchmark | ns/op | B/op | allocs/op |"
echo "|---|---:|---:|---:|"
go test -run '^$' -bench 'BenchmarkProxy' -benchmem -benchtime 20000x -count 1 ./edge/proxy/ | to_table

echo
echo "## Edge proxy throughput: $WASM"
echo
go run ./edge/internal/edgebench -wasm "$WASM" -plugin-config-file "$PLUGIN_CONFIG_FILE" \
  -duration "${EDGE_BENCH_DURATION:-1s}" -rounds "${EDGE_BENCH_ROUNDS:-7}" -conns "${EDGE_BENCH_CONNS:-16}"

echo
echo "## Origin calls through the host at 1000/s (pooled cluster vs http.DefaultClient)"
echo
go run ./edge/internal/edgebench -calls-rate 1000 -duration "${EDGE_BENCH_CALLS_DURATION:-3s}" -wasm edge/testdata/conformance.wasm
