#!/usr/bin/env bash
# Token and delta benchmarks against their baselines, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(go test ./sdk/wire -run '^$' -bench 'Token|SecureCookie|Delta(Encode|Decode)' -benchtime "${BENCHTIME:-1s}" -count 1)
echo "$out" | grep -E '^Benchmark'
ns() { echo "$out" | awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" {print $3}'; }
metric() { echo "$out" | awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" {for (i=1;i<=NF;i++) if ($i=="bytes/delta") print $(i-1)}'; }
verify=$(ns BenchmarkTokenVerify); sc=$(ns BenchmarkSecureCookieDecode)
cbor=$(metric BenchmarkDeltaEncode); js=$(metric BenchmarkDeltaEncodeJSON)
echo
printf '%-44s %12s %12s %8s\n' "comparison" "ours" "baseline" "ratio"
printf '%-44s %10s ns %10s ns %7.1fx\n' "token verify vs securecookie decode" "$verify" "$sc" "$(awk -v a="$sc" -v b="$verify" 'BEGIN{print a/b}')"
printf '%-44s %11s B %11s B %7.2fx\n' "one-attribute delta: CBOR vs JSON size" "$cbor" "$js" "$(awk -v a="$cbor" -v b="$js" 'BEGIN{print a/b}')"
