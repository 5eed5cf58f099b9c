// Package filter is the sessionedge guest: the per-request logic
// (docs/filter.md) and the sync loop, written against package abi so that
// it runs natively (mock host) as well as compiled to wasm.
//
// A VM holds everything one wasm instance holds: its root contexts (one per
// plugin configuration) and the streams they own. The proxy-wasm callbacks
// of package main forward to the VM methods of the same name; nothing here
// blocks, and all asynchronous work rides on ticks and HTTP calls.
package filter

import (
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// VM is the guest state of one wasm instance. It is not safe for concurrent
// use: a host never enters an instance from two threads at once.
type VM struct {
	roots   map[uint32]*Plugin
	streams table[stream]
	lastP   *Plugin   // the root of the last stream created: most streams share one
	free    []*stream // recycled stream states, so a request allocates nothing
	last    *stream   // the stream of the last callback: most callbacks repeat it
}

// stream returns the state of stream id, or nil. The memo saves a lookup
// per callback, which is worth it in a Go wasm guest.
func (vm *VM) stream(id uint32) *stream {
	if s := vm.last; s != nil && s.id == id && s.p != nil {
		return s
	}
	s := vm.streams.get(uint64(id))
	if s != nil {
		vm.last = s
	}
	return s
}

// NewVM returns an empty VM.
func NewVM() *VM {
	return &VM{roots: map[uint32]*Plugin{}}
}

// Plugin returns the root context id's plugin, or nil.
func (vm *VM) Plugin(root uint32) *Plugin { return vm.roots[root] }

// OnContextCreate creates a root context (parent 0) or a stream of root
// parent.
func (vm *VM) OnContextCreate(id, parent uint32) {
	if parent == 0 {
		if vm.roots[id] == nil {
			vm.roots[id] = newPlugin(id)
		}
		return
	}
	p := vm.lastP
	if p == nil || p.id != parent {
		p = vm.roots[parent]
		vm.lastP = p
	}
	if p == nil {
		abi.Log(abi.LogError, "sessionedge: stream context created for an unknown root context")
		return
	}
	var s *stream
	if n := len(vm.free); n > 0 {
		s = vm.free[n-1]
		vm.free = vm.free[:n-1]
	} else {
		s = new(stream)
	}
	s.reset(id, p)
	vm.streams.set(uint64(id), s)
	vm.last = s
}

// OnVMStart accepts the VM configuration; the filter needs none.
func (vm *VM) OnVMStart(root, size uint32) bool { return true }

// OnConfigure reads and applies the plugin configuration of root. It
// returns false, with a log line naming the field, when it is invalid.
func (vm *VM) OnConfigure(root, size uint32) bool {
	p := vm.roots[root]
	if p == nil {
		p = newPlugin(root)
		vm.roots[root] = p
	}
	return p.configure(size)
}

// OnTick runs the sync loop of root.
func (vm *VM) OnTick(root uint32) {
	if p := vm.roots[root]; p != nil && p.cfg != nil {
		p.tick(vm)
	}
}

// OnRequestHeaders runs the request side of the filter.
func (vm *VM) OnRequestHeaders(id, numHeaders uint32, eos bool) abi.Action {
	s := vm.stream(id)
	if s == nil || s.p.cfg == nil {
		return abi.ActionContinue
	}
	return s.p.onRequestHeaders(vm, s, eos)
}

// OnRequestBody collects the body of a self-service PATCH.
func (vm *VM) OnRequestBody(id, size uint32, eos bool) abi.Action {
	s := vm.stream(id)
	if s == nil || s.p.cfg == nil {
		return abi.ActionContinue
	}
	return s.p.onRequestBody(vm, s, size, eos)
}

// OnRequestTrailers removes x-session-* trailers, as the headers callback
// removes x-session-* headers. The trailers end the request: a request the
// filter holds stays held (a host continues a stream whose trailers
// callback says continue, even after the headers callback paused, as Envoy
// does, and the request would leave without its session headers), and a
// self-service PATCH that waited for the end of its body is answered.
func (vm *VM) OnRequestTrailers(id, numTrailers uint32) abi.Action {
	s := vm.stream(id)
	if s == nil || s.p.cfg == nil {
		return abi.ActionContinue
	}
	stripTrailers(abi.MapRequestTrailers, s)
	return s.p.onRequestTrailers(s)
}

// OnResponseTrailers removes the app's x-session-* trailers.
func (vm *VM) OnResponseTrailers(id, numTrailers uint32) abi.Action {
	if s := vm.stream(id); s != nil && s.p.cfg != nil {
		stripTrailers(abi.MapResponseTrailers, s)
	}
	return abi.ActionContinue
}

// OnResponseHeaders runs the response side of the filter.
func (vm *VM) OnResponseHeaders(id, numHeaders uint32, eos bool) abi.Action {
	s := vm.stream(id)
	if s == nil || s.p.cfg == nil {
		return abi.ActionContinue
	}
	return s.p.onResponseHeaders(s)
}

// OnHTTPCallResponse delivers the answer of a call made by root.
func (vm *VM) OnHTTPCallResponse(root, token, numHeaders, bodySize, numTrailers uint32) {
	if p := vm.roots[root]; p != nil && p.cfg != nil {
		p.onHTTPCallResponse(vm, token, numHeaders, bodySize)
	}
}

// OnDone reports that context id is finished; the filter has nothing to
// flush, so it always agrees.
func (vm *VM) OnDone(id uint32) bool { return true }

// OnLog is called after a stream ends; the filter logs nothing per request.
func (vm *VM) OnLog(id uint32) {}

// OnDelete frees the state of context id. A reply to an HTTP call that a
// deleted stream waited for is ignored when it arrives.
func (vm *VM) OnDelete(id uint32) {
	if s := vm.stream(id); s != nil {
		vm.streams.del(uint64(id))
		vm.last = nil
		s.p.forget(s)
		s.p = nil
		vm.free = append(vm.free, s)
		return
	}
	if vm.lastP != nil && vm.lastP.id == id {
		vm.lastP = nil
	}
	delete(vm.roots, id)
}
