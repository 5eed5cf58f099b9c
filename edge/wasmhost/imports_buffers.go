package wasmhost

import (
	"github.com/sessionedge/sessionedge/proxywasm"
)

// buffer returns the buffer of type t in the current context. The VM and
// plugin configurations are readable only during proxy_on_vm_start and
// proxy_on_configure, the HTTP-call body only during
// proxy_on_http_call_response; elsewhere they are NOT_FOUND.
func (v *vm) buffer(t proxywasm.BufferType) (*[]byte, proxywasm.Status) {
	switch t {
	case proxywasm.BufferRequestBody, proxywasm.BufferResponseBody:
		s := v.cur
		if s == nil || !s.accessible() {
			return nil, proxywasm.StatusNotFound
		}
		if t == proxywasm.BufferRequestBody {
			return &s.reqBody, proxywasm.StatusOK
		}
		if !s.hasResp {
			return nil, proxywasm.StatusNotFound
		}
		return &s.respBody, proxywasm.StatusOK
	case proxywasm.BufferHTTPCallResponseBody:
		if v.callResp == nil {
			return nil, proxywasm.StatusNotFound
		}
		return &v.callResp.Body, proxywasm.StatusOK
	case proxywasm.BufferVMConfiguration:
		if v.phase != phaseVMStart {
			return nil, proxywasm.StatusNotFound
		}
		return &v.host.cfg.VMConfig, proxywasm.StatusOK
	case proxywasm.BufferPluginConfiguration:
		if v.phase != phaseConfigure {
			return nil, proxywasm.StatusNotFound
		}
		return &v.host.cfg.PluginConfig, proxywasm.StatusOK
	case proxywasm.BufferDownstreamData, proxywasm.BufferUpstreamData, proxywasm.BufferGRPCMessage, proxywasm.BufferForeignFunctionArgs:
		return nil, proxywasm.StatusNotFound
	}
	return nil, proxywasm.StatusBadArgument
}

// proxy_get_buffer_bytes(buffer_type, start, max_size, return_buffer_data, return_buffer_size)
func proxyGetBufferBytes(v *vm, stack []uint64) proxywasm.Status {
	b, st := v.buffer(proxywasm.BufferType(stack[0]))
	if st != proxywasm.StatusOK {
		return st
	}
	start, max := uint64(u32(stack[1])), uint64(u32(stack[2]))
	if start > uint64(len(*b)) {
		return proxywasm.StatusBadArgument
	}
	end := start + max
	if end > uint64(len(*b)) {
		end = uint64(len(*b))
	}
	return v.copyOut((*b)[start:end], u32(stack[3]), u32(stack[4]))
}

// proxy_set_buffer_bytes(buffer_type, start, size, buffer_data, buffer_size):
// replaces bytes [start, start+size) with the data, which covers prepend
// (0, 0), replace (0, len) and append (len, 0). Only bodies are writable.
func proxySetBufferBytes(v *vm, stack []uint64) proxywasm.Status {
	data, ok := v.read(u32(stack[3]), u32(stack[4]))
	if !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	t := proxywasm.BufferType(stack[0])
	if t != proxywasm.BufferRequestBody && t != proxywasm.BufferResponseBody {
		if t > proxywasm.BufferForeignFunctionArgs {
			return proxywasm.StatusBadArgument
		}
		return proxywasm.StatusNotFound
	}
	b, st := v.buffer(t)
	if st != proxywasm.StatusOK {
		return st
	}
	start, size := uint64(u32(stack[1])), uint64(u32(stack[2]))
	old := *b
	if start > uint64(len(old)) {
		return proxywasm.StatusBadArgument
	}
	end := start + size
	if end > uint64(len(old)) {
		end = uint64(len(old))
	}
	// A new slice: the old body may belong to the proxy's request object.
	nb := make([]byte, 0, int(start)+len(data)+len(old)-int(end))
	nb = append(nb, old[:start]...)
	nb = append(nb, data...)
	nb = append(nb, old[end:]...)
	*b = nb
	return proxywasm.StatusOK
}

// proxy_get_buffer_status is not part of ABI v0.2.1; Envoy does not export it.
func proxyGetBufferStatus(v *vm, stack []uint64) proxywasm.Status {
	return proxywasm.StatusUnimplemented
}
