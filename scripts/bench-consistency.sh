#!/usr/bin/env bash
# Consistency and revocation through the real processes (called by `make
# bench`): internal/systemtest's TestRevocationUnderFlood, long version. An
# origin (Pebble), the edge proxy with the filter (sync interval
# BENCH_SYNC_INTERVAL, default 500ms) and an app on loopback; customers are
# revoked through the API, first quietly, then while a Go client sends
# cookie-less requests at BENCH_FLOOD_RATE per second (default 2000) for
# BENCH_FLOOD_SECONDS (default 10), once per VM count in BENCH_VMS
# (default "2 4"). Meanwhile shoppers log in, write and log out, and the
# app checks every view it is forwarded (the stale-view window).
# Then the hung-origin and large-body tests, once each. Prints markdown
# tables (docs/benchmarks.md records them). Bounded: about 40 s per VM
# count plus 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${BENCH_FLOOD_RATE:-2000}
SECONDS_=${BENCH_FLOOD_SECONDS:-10}
INTERVAL=${BENCH_SYNC_INTERVAL:-500ms}
REVOCATIONS=${BENCH_REVOCATIONS:-10}
REPORT=$(mktemp)
trap 'rm -f "$REPORT"' EXIT

run() {
  if ! SYSTEMTEST_REPORT="$REPORT" go test -count=1 -timeout 15m -run "$1" ./internal/systemtest -v >"$REPORT.log" 2>&1; then
    mkdir -p build
    cp "$REPORT.log" build/bench-consistency-failed.log
    echo "bench-consistency: $1 failed (whole log, the processes' output included: build/bench-consistency-failed.log):"
    grep -v '^        time=' "$REPORT.log" | grep -v '^=== \|^    [a-z_]*_test.go:[0-9]*: \(flood\|revocation\|origin hung\|self-service\)' | tail -40
    rm -f "$REPORT.log"; return 1
  fi
  rm -f "$REPORT.log"
}

status=0
for vms in ${BENCH_VMS:-2 4}; do
  SYSTEMTEST_VMS=$vms SYSTEMTEST_FLOOD_RATE=$RATE SYSTEMTEST_FLOOD_SECONDS=$SECONDS_ \
    SYSTEMTEST_SYNC_INTERVAL=$INTERVAL SYSTEMTEST_REVOCATIONS=$REVOCATIONS \
    run '^TestRevocationUnderFlood$' || status=1
done
run '^(TestOriginHung|TestSelfServiceBodiesLoad)$' || status=1

echo "Flood (target $RATE req/s for ${SECONDS_}s, fixed-rate Go client on loopback):"
echo
grep '^flood:' "$REPORT" | sed 's/^flood: /- /'
echo
echo "Revocation latency (after the DELETE was acknowledged, until the first VM / every VM refused the token) and stale views:"
echo
echo "| VMs | phase | sync interval | revocations | first VM p50 | first VM p99 | every VM p50 | every VM p99 | stale views |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
grep '^revocation ' "$REPORT" | sed -E 's/^revocation ([a-z]+) vms=([0-9]+) interval=([^ ]+) n=([0-9]+) first-VM p50=([^ ]+) ms p99=([^ ]+) ms every-VM p50=([^ ]+) ms p99=([^ ]+) ms DELETE p50=[^;]*; stale views ([0-9]+ of [0-9]+) checked.*/| \2 | \1 | \3 | \4 | \5 ms | \6 ms | \7 ms | \8 ms | \9 |/'
echo
echo "Origin trouble and large self-service bodies:"
echo
grep -E '^(origin hung|self-service bodies)' "$REPORT" | sed 's/^/- /'
exit $status
