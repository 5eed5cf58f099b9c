#!/usr/bin/env bash
# The gate before every commit: formatting, vet, module tidiness, and the guest
# dependency rule (the guest and sdk/wire build with the standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "check: gofmt would change:"; echo "$unformatted"; fail=1
fi

go vet ./... || fail=1
GOOS=wasip1 GOARCH=wasm go vet ./sdk/wire/... ./proxywasm/... ./wasm/... || fail=1

cp go.mod /tmp/check.go.mod.$$; cp go.sum /tmp/check.go.sum.$$ 2>/dev/null || : > /tmp/check.go.sum.$$
go mod tidy
if ! diff -q go.mod /tmp/check.go.mod.$$ >/dev/null || ! diff -q go.sum /tmp/check.go.sum.$$ >/dev/null; then
  echo "check: go mod tidy changed go.mod/go.sum (now fixed in the tree; commit it)"; fail=1
fi
rm -f /tmp/check.go.mod.$$ /tmp/check.go.sum.$$

# Guest dependency rule: the guest and sdk/wire import only the standard
# library and this module's sdk/wire, proxywasm and wasm packages; proxywasm,
# shared by the host and the guest, imports only the standard library.
module=$(go list -m)
bad=$(GOOS=wasip1 GOARCH=wasm go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./sdk/wire/... ./wasm/... \
      | grep -Ev "^$module/(sdk/wire|proxywasm|wasm)(/|\$)" || true)
if [ -n "$bad" ]; then
  echo "check: the guest and sdk/wire may import only the standard library, sdk/wire and proxywasm; found:"
  echo "$bad"; fail=1
fi
for goos in linux wasip1; do
  arch=amd64; [ $goos = wasip1 ] && arch=wasm
  bad=$(GOOS=$goos GOARCH=$arch go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./proxywasm \
        | grep -vx "$module/proxywasm" || true)
  if [ -n "$bad" ]; then
    echo "check: proxywasm may import only the standard library; found ($goos):"
    echo "$bad"; fail=1
  fi
done

[ $fail -eq 0 ] && echo "check: ok"
exit $fail
