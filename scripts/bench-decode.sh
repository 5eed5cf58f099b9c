#!/usr/bin/env bash
# Decoding untrusted input (docs/benchmarks.md): context bodies of 1k to 64k
# keys, JSON and CBOR, decoded with the limits raised so they are accepted
# (time per key) and with the default limits (refused once the object passes
# maxAttrs keys: time per body). Runs natively and in the guest runtime: the
# sdk/wire test binary built for wasip1 and run on wazero, as the filter runs.
#   BENCHTIME (default 200ms) and COUNT (default 3). The tables show the best
#   of the COUNT runs: on a shared machine interference only ever adds time.
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${BENCHTIME:-200ms}
count=${COUNT:-3}
pattern='^BenchmarkDecode(Object|Refused)$'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "native: go test ./sdk/wire -run '^\$' -bench '$pattern' -benchtime $benchtime -count $count" >&2
go test ./sdk/wire -run '^$' -bench "$pattern" -benchtime "$benchtime" -count "$count" | tee "$tmp/native.txt" | grep -E '^Benchmark' >&2

echo "guest: GOOS=wasip1 GOARCH=wasm go test -c ./sdk/wire; wazero run wire.wasm -test.bench ..." >&2
GOOS=wasip1 GOARCH=wasm go test -c -o "$tmp/wire.wasm" ./sdk/wire
go build -o "$tmp/wazero" github.com/tetratelabs/wazero/cmd/wazero
"$tmp/wazero" run "$tmp/wire.wasm" -test.run '^$' -test.bench "$pattern" -test.benchtime "$benchtime" \
  -test.count "$count" | tee "$tmp/guest.txt" | grep -E '^Benchmark' >&2

# best FILE NAME UNIT: the smallest figure before UNIT over the runs of
# benchmark NAME (the -N GOMAXPROCS suffix ignored).
best() {
  awk -v name="$2" -v unit="$3" '
    { n = $1; sub(/-[0-9]+$/, "", n) }
    n == name { for (i = 2; i <= NF; i++) if ($i == unit && (c++ == 0 || $(i-1) + 0 < min)) min = $(i-1) + 0 }
    END { if (c == 0) print "-"; else print min }' "$1"
}
us() { awk -v ns="$1" 'BEGIN { if (ns == "-") print "-"; else printf "%.1f", ns / 1000 }'; }

echo
echo "Accepted (limits raised): ns per key, best of $count runs (wall time; native CPU: the decoding thread's CPU time)"
echo
echo "| keys | JSON native | JSON native CPU | CBOR native | CBOR native CPU | JSON guest | CBOR guest |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
cols=("native json ns/key" "native json cpu-ns/key" "native cbor ns/key" "native cbor cpu-ns/key"
      "guest json ns/key" "guest cbor ns/key")
declare -A first
ratio="| 64k ÷ 1k"
for k in 1 2 4 8 16 32 64; do
  row="| ${k}k"
  for col in "${!cols[@]}"; do
    read -r where codec unit <<<"${cols[$col]}"
    v=$(best "$tmp/$where.txt" "BenchmarkDecodeObject/$codec/${k}k" "$unit")
    row="$row | $v"
    [ "$k" = 1 ] && first[$col]=$v
    if [ "$k" = 64 ]; then
      ratio="$ratio | $(awk -v a="$v" -v b="${first[$col]}" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×", a / b }')"
    fi
  done
  echo "$row |"
done
echo "$ratio |"
echo
echo "Refused (default limits): µs per body, best of $count runs"
echo
echo "| keys in the body | JSON native | CBOR native | JSON guest | CBOR guest |"
echo "|---:|---:|---:|---:|---:|"
for k in 1 2 4 8 16 32 64; do
  row="| ${k}k"
  for f in "$tmp/native.txt" "$tmp/guest.txt"; do
    for c in json cbor; do
      row="$row | $(us "$(best "$f" "BenchmarkDecodeRefused/$c/${k}k" ns/op)")"
    done
  done
  echo "$row |"
done
