//go:build !wasip1

package proxytest

import (
	"testing"

	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/filter"
)

// Native is a Guest that runs the filter compiled natively against the abi
// mock. Each callback first makes its VM's mock the current host, because
// several VMs may share one test.
type Native struct {
	VM *filter.VM
	m  *abi.Mock
}

// NewNative is the NewGuest of native guests.
func NewNative(t testing.TB, m *abi.Mock) Guest { return &Native{VM: filter.NewVM(), m: m} }

// ContextCreate is proxy_on_context_create.
func (g *Native) ContextCreate(id, parent uint32) { abi.Use(g.m); g.VM.OnContextCreate(id, parent) }

// VMStart is proxy_on_vm_start.
func (g *Native) VMStart(root, size uint32) bool { abi.Use(g.m); return g.VM.OnVMStart(root, size) }

// Configure is proxy_on_configure.
func (g *Native) Configure(root, size uint32) bool { abi.Use(g.m); return g.VM.OnConfigure(root, size) }

// Tick is proxy_on_tick.
func (g *Native) Tick(root uint32) { abi.Use(g.m); g.VM.OnTick(root) }

// RequestHeaders is proxy_on_request_headers.
func (g *Native) RequestHeaders(id, n uint32, eos bool) uint32 {
	abi.Use(g.m)
	return uint32(g.VM.OnRequestHeaders(id, n, eos))
}

// RequestBody is proxy_on_request_body.
func (g *Native) RequestBody(id, size uint32, eos bool) uint32 {
	abi.Use(g.m)
	return uint32(g.VM.OnRequestBody(id, size, eos))
}

// RequestTrailers is proxy_on_request_trailers.
func (g *Native) RequestTrailers(id, n uint32) uint32 {
	abi.Use(g.m)
	return uint32(g.VM.OnRequestTrailers(id, n))
}

// ResponseTrailers is proxy_on_response_trailers.
func (g *Native) ResponseTrailers(id, n uint32) uint32 {
	abi.Use(g.m)
	return uint32(g.VM.OnResponseTrailers(id, n))
}

// ResponseHeaders is proxy_on_response_headers.
func (g *Native) ResponseHeaders(id, n uint32, eos bool) uint32 {
	abi.Use(g.m)
	return uint32(g.VM.OnResponseHeaders(id, n, eos))
}

// HTTPCallResponse is proxy_on_http_call_response.
func (g *Native) HTTPCallResponse(root, token, nh, bs, nt uint32) {
	abi.Use(g.m)
	g.VM.OnHTTPCallResponse(root, token, nh, bs, nt)
}

// Done is proxy_on_done.
func (g *Native) Done(id uint32) bool { abi.Use(g.m); return g.VM.OnDone(id) }

// Log is proxy_on_log.
func (g *Native) Log(id uint32) { abi.Use(g.m); g.VM.OnLog(id) }

// Delete is proxy_on_delete.
func (g *Native) Delete(id uint32) { abi.Use(g.m); g.VM.OnDelete(id) }

// Counters exposes the counters of root context 1 to the scenarios.
func (g *Native) Counters() filter.Counters { return g.VM.Plugin(1).Counters() }
