//go:build !wasip1

package filter_test

import (
	"testing"

	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/filter"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// nativeGuest runs the filter compiled natively against the abi mock; each
// callback first makes its VM's mock the current host, as several VMs may
// share one test.
type nativeGuest struct {
	vm *filter.VM
	m  *abi.Mock
}

func newNative(t testing.TB, m *abi.Mock) proxytest.Guest {
	return &nativeGuest{vm: filter.NewVM(), m: m}
}

func (g *nativeGuest) ContextCreate(id, parent uint32) {
	abi.Use(g.m)
	g.vm.OnContextCreate(id, parent)
}
func (g *nativeGuest) VMStart(root, size uint32) bool {
	abi.Use(g.m)
	return g.vm.OnVMStart(root, size)
}
func (g *nativeGuest) Configure(root, size uint32) bool {
	abi.Use(g.m)
	return g.vm.OnConfigure(root, size)
}
func (g *nativeGuest) Tick(root uint32) { abi.Use(g.m); g.vm.OnTick(root) }
func (g *nativeGuest) RequestHeaders(id, n uint32, eos bool) uint32 {
	abi.Use(g.m)
	return uint32(g.vm.OnRequestHeaders(id, n, eos))
}
func (g *nativeGuest) RequestBody(id, size uint32, eos bool) uint32 {
	abi.Use(g.m)
	return uint32(g.vm.OnRequestBody(id, size, eos))
}
func (g *nativeGuest) ResponseHeaders(id, n uint32, eos bool) uint32 {
	abi.Use(g.m)
	return uint32(g.vm.OnResponseHeaders(id, n, eos))
}
func (g *nativeGuest) HTTPCallResponse(root, token, nh, bs, nt uint32) {
	abi.Use(g.m)
	g.vm.OnHTTPCallResponse(root, token, nh, bs, nt)
}
func (g *nativeGuest) Done(id uint32) bool { abi.Use(g.m); return g.vm.OnDone(id) }
func (g *nativeGuest) Log(id uint32)       { abi.Use(g.m); g.vm.OnLog(id) }
func (g *nativeGuest) Delete(id uint32)    { abi.Use(g.m); g.vm.OnDelete(id) }

// Counters exposes the root plugin's counters to the scenarios.
func (g *nativeGuest) Counters() filter.Counters { return g.vm.Plugin(1).Counters() }

func TestScenarios(t *testing.T) { proxytest.Run(t, newNative) }
