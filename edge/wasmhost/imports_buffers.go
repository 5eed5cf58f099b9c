package wasmhost

import "github.com/tetratelabs/wazero/api"

// Buffer types of the ABI.
const (
	bufRequestBody      = 0
	bufResponseBody     = 1
	bufDownstream       = 2
	bufUpstream         = 3
	bufHTTPCallResponse = 4
	bufGRPCMessage      = 5
	bufVMConfiguration  = 6
	bufPluginConfig     = 7
	bufForeignArgs      = 8
)

// buffer returns the buffer of type t in the current context. The VM and
// plugin configurations are readable only during proxy_on_vm_start and
// proxy_on_configure, the HTTP-call body only during
// proxy_on_http_call_response; elsewhere they are NOT_FOUND.
func (v *vm) buffer(t uint32) (*[]byte, Status) {
	switch t {
	case bufRequestBody, bufResponseBody:
		s := v.cur
		if s == nil || !s.accessible() {
			return nil, StatusNotFound
		}
		if t == bufRequestBody {
			return &s.reqBody, StatusOK
		}
		if !s.hasResp {
			return nil, StatusNotFound
		}
		return &s.respBody, StatusOK
	case bufHTTPCallResponse:
		if v.callResp == nil {
			return nil, StatusNotFound
		}
		return &v.callResp.Body, StatusOK
	case bufVMConfiguration:
		if v.phase != phaseVMStart {
			return nil, StatusNotFound
		}
		return &v.host.cfg.VMConfig, StatusOK
	case bufPluginConfig:
		if v.phase != phaseConfigure {
			return nil, StatusNotFound
		}
		return &v.host.cfg.PluginConfig, StatusOK
	case bufDownstream, bufUpstream, bufGRPCMessage, bufForeignArgs:
		return nil, StatusNotFound
	}
	return nil, StatusBadArgument
}

// proxy_get_buffer_bytes(buffer_type, start, max_size, return_buffer_data, return_buffer_size)
func proxyGetBufferBytes(ctx ctxT, _ api.Module, stack []uint64) {
	v := vmOf(ctx)
	b, st := v.buffer(u32(stack[0]))
	if st != StatusOK {
		stack[0] = uint64(st)
		return
	}
	start, max := uint64(u32(stack[1])), uint64(u32(stack[2]))
	if start > uint64(len(*b)) {
		stack[0] = uint64(StatusBadArgument)
		return
	}
	end := start + max
	if end > uint64(len(*b)) {
		end = uint64(len(*b))
	}
	stack[0] = uint64(v.copyOut((*b)[start:end], u32(stack[3]), u32(stack[4])))
}

// proxy_set_buffer_bytes(buffer_type, start, size, buffer_data, buffer_size):
// replaces bytes [start, start+size) with the data, which covers prepend
// (0, 0), replace (0, len) and append (len, 0). Only bodies are writable.
func proxySetBufferBytes(ctx ctxT, _ api.Module, stack []uint64) {
	v := vmOf(ctx)
	data, ok := v.read(u32(stack[3]), u32(stack[4]))
	if !ok {
		stack[0] = uint64(StatusInvalidMemoryAccess)
		return
	}
	t := u32(stack[0])
	if t != bufRequestBody && t != bufResponseBody {
		if t > bufForeignArgs {
			stack[0] = uint64(StatusBadArgument)
		} else {
			stack[0] = uint64(StatusNotFound)
		}
		return
	}
	b, st := v.buffer(t)
	if st != StatusOK {
		stack[0] = uint64(st)
		return
	}
	start, size := uint64(u32(stack[1])), uint64(u32(stack[2]))
	old := *b
	if start > uint64(len(old)) {
		stack[0] = uint64(StatusBadArgument)
		return
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
	stack[0] = uint64(StatusOK)
}

// proxy_get_buffer_status is not part of ABI v0.2.1; Envoy does not export it.
func proxyGetBufferStatus(_ ctxT, _ api.Module, stack []uint64) {
	stack[0] = uint64(StatusUnimplemented)
}
