#!/usr/bin/env bash
# make test: the whole suite, with one summary at the end of what failed and
# of every test that skipped and why (scripts/testsummary). Set
# SESSIONEDGE_REQUIRE=all to make a missing tool fail instead of skip.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p build/bin
$GO build -o build/bin/testsummary ./scripts/testsummary
$GO test -count=1 -timeout 30m -json ./... | build/bin/testsummary
