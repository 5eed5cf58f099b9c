//go:build wasip1

package main

import (
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// The proxy-wasm ABI v0.2.1 callbacks. Every signature uses 32-bit integers
// and bool parameters only: Go's int is 64 bits on GOARCH=wasm and 32 bits
// in TinyGo. Boolean results are returned as uint32 (1 or 0), which is the
// same i32 at the wasm level and needs no bool support in the export
// lowering of either compiler.
//
// proxy_on_response_body is not exported: the filter has nothing to do with
// response bodies, and a host calls only the callbacks a module exports
// (Envoy answers Continue for a missing one), so bodies stream past the
// filter instead of being copied into it.

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion0_2_1() {}

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) uint32 { return uint32(uintptr(abi.Allocate(size))) }

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(id, parent uint32) { vm.OnContextCreate(id, parent) }

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(root, size uint32) uint32 { return b2u(vm.OnVMStart(root, size)) }

//go:wasmexport proxy_on_configure
func proxyOnConfigure(root, size uint32) uint32 { return b2u(vm.OnConfigure(root, size)) }

//go:wasmexport proxy_on_tick
func proxyOnTick(root uint32) { vm.OnTick(root) }

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(id, n uint32, eos bool) uint32 {
	return uint32(vm.OnRequestHeaders(id, n, eos))
}

//go:wasmexport proxy_on_request_body
func proxyOnRequestBody(id, size uint32, eos bool) uint32 {
	return uint32(vm.OnRequestBody(id, size, eos))
}

//go:wasmexport proxy_on_request_trailers
func proxyOnRequestTrailers(id, n uint32) uint32 { return uint32(vm.OnRequestTrailers(id, n)) }

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(id, n uint32, eos bool) uint32 {
	return uint32(vm.OnResponseHeaders(id, n, eos))
}

//go:wasmexport proxy_on_response_trailers
func proxyOnResponseTrailers(id, n uint32) uint32 { return uint32(vm.OnResponseTrailers(id, n)) }

//go:wasmexport proxy_on_http_call_response
func proxyOnHTTPCallResponse(root, token, nHeaders, bodySize, nTrailers uint32) {
	vm.OnHTTPCallResponse(root, token, nHeaders, bodySize, nTrailers)
}

//go:wasmexport proxy_on_done
func proxyOnDone(id uint32) uint32 { return b2u(vm.OnDone(id)) }

//go:wasmexport proxy_on_log
func proxyOnLog(id uint32) { vm.OnLog(id) }

//go:wasmexport proxy_on_delete
func proxyOnDelete(id uint32) { vm.OnDelete(id) }

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
