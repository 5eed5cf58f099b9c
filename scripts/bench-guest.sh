#!/usr/bin/env bash
# Guest filter benchmarks: one replayed request (cached token and context)
# natively and in wazero, first sight of a token (HMAC verify), module size
# and instantiate time. Every figure comes from one `go test` run of
# ./wasm, so the wasm/native ratio is measured on the same machine state.
# COUNT repeats each benchmark; the table shows the fastest repetition,
# which is the least disturbed by other load on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
out=$(go test ./wasm -run '^$' -bench 'WarmRequest|FirstSight' -benchtime "${BENCHTIME:-1s}" -count "$count"
  go test ./wasm -run '^$' -bench 'Instantiate' -benchtime 100x -count "$count")
echo "$out" | grep -E '^Benchmark'
best() { echo "$out" | awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" {if (min == "" || $3+0 < min+0) min = $3} END {print min}'; }
# bestcpu is the thread CPU time per op (the cpu-ns/op metric): on a loaded
# machine wall time includes waiting for a core, CPU time does not.
bestcpu() { echo "$out" | awk -v b="$1" '$1 ~ "^"b"(-[0-9]+)?$" {for (i=1;i<=NF;i++) if ($i=="cpu-ns/op" && (min == "" || $(i-1)+0 < min+0)) min = $(i-1)} END {print min}'; }
warmN=$(best 'BenchmarkWarmRequest/native'); warmW=$(best 'BenchmarkWarmRequest/wasm')
firstN=$(best 'BenchmarkFirstSight/native'); firstW=$(best 'BenchmarkFirstSight/wasm')
inst=$(best 'BenchmarkInstantiate')
warmNc=$(bestcpu 'BenchmarkWarmRequest/native'); warmWc=$(bestcpu 'BenchmarkWarmRequest/wasm')
firstNc=$(bestcpu 'BenchmarkFirstSight/native'); firstWc=$(bestcpu 'BenchmarkFirstSight/wasm')
instc=$(bestcpu 'BenchmarkInstantiate')
size=$(echo "$out" | awk '/^BenchmarkInstantiate/ {for (i=1;i<=NF;i++) if ($i=="module-bytes") print $(i-1)}' | head -1)
us() { awk -v n="$1" 'BEGIN{printf "%.2f µs", n/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1fx", a/b}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN{print (v+0 <= t+0) ? "met" : "missed"}'; }
echo
printf '%-46s %14s %14s %s\n' "measure" "value" "target" "verdict"
printf '%-46s %14s %14s %s\n' "warm request, wazero" "$(us "$warmW")" "≤ 3 µs" "$(verdict "$warmW" 3000)"
printf '%-46s %14s %14s %s\n' "warm request, native (same logic, mock ABI)" "$(us "$warmN")" "-" "-"
printf '%-46s %14s %14s %s\n' "warm request, wazero / native" "$(ratio "$warmW" "$warmN")" "≤ 2x" "$(verdict "$(awk -v a="$warmW" -v b="$warmN" 'BEGIN{print a/b}')" 2)"
printf '%-46s %14s %14s %s\n' "warm request, wazero, thread CPU time" "$(us "$warmWc")" "≤ 3 µs" "$(verdict "$warmWc" 3000)"
printf '%-46s %14s %14s %s\n' "warm request, CPU time wazero / native" "$(ratio "$warmWc" "$warmNc")" "≤ 2x" "$(verdict "$(awk -v a="$warmWc" -v b="$warmNc" 'BEGIN{print a/b}')" 2)"
printf '%-46s %14s %14s %s\n' "first sight of a token, wazero" "$(us "$firstW")" "≤ 20 µs" "$(verdict "$firstW" 20000)"
printf '%-46s %14s %14s %s\n' "first sight of a token, wazero, thread CPU time" "$(us "$firstWc")" "≤ 20 µs" "$(verdict "$firstWc" 20000)"
printf '%-46s %14s %14s %s\n' "first sight of a token, native" "$(us "$firstN")" "-" "-"
printf '%-46s %14s %14s %s\n' "module size (Go, -ldflags=-s)" "$(awk -v n="$size" 'BEGIN{printf "%.2f MB", n/1e6}')" "≤ 3 MB" "$(verdict "$size" 3000000)"
printf '%-46s %14s %14s %s\n' "instantiate + configure a VM" "$(awk -v n="$inst" 'BEGIN{printf "%.2f ms", n/1e6}')" "≤ 10 ms" "$(verdict "$inst" 10000000)"
printf '%-46s %14s %14s %s\n' "instantiate + configure, thread CPU time" "$(awk -v n="$instc" 'BEGIN{printf "%.2f ms", n/1e6}')" "≤ 10 ms" "$(verdict "$instc" 10000000)"
