#!/usr/bin/env bash
# Caddy benchmark (called by `make bench`): throughput of Caddy's
# reverse_proxy with the proxy_wasm handler in front of it against
# reverse_proxy alone, one Caddy process (build/bin/caddy), same upstream,
# on loopback; with the sessionedge filter (build/sessionedge.wasm) and with
# the .wat conformance guest (the handler's and the host's cost alone).
# Bounded: CADDY_BENCH_ROUNDS alternating rounds of CADDY_BENCH_DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x build/bin/caddy ] || go build -o build/bin/caddy ./edge/cmd/caddy
# The plugin configuration holds a (fixed, test-only) token key: it goes to
# Caddy in a file (0600), never on a command line.
PLUGIN_CONFIG_FILE=$(mktemp)
trap 'rm -f "$PLUGIN_CONFIG_FILE"' EXIT
chmod 600 "$PLUGIN_CONFIG_FILE"
printf '%s' '{"keys":{"1":"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="}}' > "$PLUGIN_CONFIG_FILE"

args=(-rounds "${CADDY_BENCH_ROUNDS:-7}" -duration "${CADDY_BENCH_DURATION:-1s}" -conns "${CADDY_BENCH_CONNS:-16}")
if [ -f build/sessionedge.wasm ]; then
  echo
  echo "## Caddy: reverse_proxy with and without proxy_wasm, build/sessionedge.wasm"
  echo
  go run ./edge/caddy/internal/caddybench -wasm build/sessionedge.wasm -plugin-config-file "$PLUGIN_CONFIG_FILE" "${args[@]}"
else
  echo "bench-caddy: build/sessionedge.wasm is absent (run make wasm): only the .wat guest"
fi
echo
echo "## Caddy: reverse_proxy with and without proxy_wasm, .wat conformance guest"
echo
go run ./edge/caddy/internal/caddybench -wasm edge/testdata/conformance.wasm "${args[@]}"
