// Command sessionedge is the proxy-wasm guest filter of sessionedge, built
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared into build/sessionedge.wasm.
//
// The host never calls main: it calls _initialize (which runs init) and then
// the proxy_on_* exports of exports_wasip1.go, which forward to the VM of
// package filter. docs/filter.md describes the configuration.
package main

import "github.com/sessionedge/sessionedge/wasm/internal/filter"

// vm is the guest state of this wasm instance, created in init so that it
// exists before the host's first callback.
var vm *filter.VM

func init() { vm = filter.NewVM() }

func main() {}
