package wasmhost

import (
	"github.com/tetratelabs/wazero/api"
)

// Map types of the ABI.
const (
	mapRequestHeaders       = 0
	mapRequestTrailers      = 1
	mapResponseHeaders      = 2
	mapResponseTrailers     = 3
	mapGRPCInitial          = 4
	mapGRPCTrailing         = 5
	mapHTTPCallRespHeaders  = 6
	mapHTTPCallRespTrailers = 7
)

// headerMap returns the map of type t in the current context. A map that
// exists in the ABI but not now (response headers during the request phase,
// HTTP-call maps outside proxy_on_http_call_response, any stream map from the
// root context) is NOT_FOUND; an unknown type is BAD_ARGUMENT. HTTP-call
// response maps are read-only.
func (v *vm) headerMap(t uint32, write bool) (*HeaderMap, Status) {
	switch t {
	case mapRequestHeaders, mapRequestTrailers, mapResponseHeaders, mapResponseTrailers:
		s := v.cur
		if s == nil || !s.accessible() {
			return nil, StatusNotFound
		}
		switch t {
		case mapRequestHeaders:
			return &s.reqHeaders, StatusOK
		case mapRequestTrailers:
			return &s.reqTrailers, StatusOK
		}
		if !s.hasResp {
			return nil, StatusNotFound
		}
		if t == mapResponseHeaders {
			return &s.respHeaders, StatusOK
		}
		return &s.respTrailers, StatusOK
	case mapGRPCInitial, mapGRPCTrailing:
		return nil, StatusNotFound
	case mapHTTPCallRespHeaders, mapHTTPCallRespTrailers:
		if v.callResp == nil {
			return nil, StatusNotFound
		}
		if write {
			return nil, StatusBadArgument
		}
		if t == mapHTTPCallRespHeaders {
			return &v.callResp.Headers, StatusOK
		}
		return &v.callResp.Trailers, StatusOK
	}
	return nil, StatusBadArgument
}

// proxy_get_header_map_pairs(map_type, return_map_data_ptr, return_map_size_ptr)
func proxyGetHeaderMapPairs(ctx ctxT, _ api.Module, stack []uint64) {
	v := vmOf(ctx)
	m, st := v.headerMap(u32(stack[0]), false)
	if st != StatusOK {
		stack[0] = uint64(st)
		return
	}
	v.scratch = m.AppendSerialized(v.scratch[:0])
	stack[0] = uint64(v.copyOut(v.scratch, u32(stack[1]), u32(stack[2])))
}

// proxy_set_header_map_pairs(map_type, map_data, map_size): replaces the map.
// Malformed or oversized data is BAD_ARGUMENT and leaves the map unchanged
// (Envoy's host core would replace the map with an empty one).
func proxySetHeaderMapPairs(ctx ctxT, _ api.Module, stack []uint64) {
	v := vmOf(ctx)
	data, ok := v.read(u32(stack[1]), u32(stack[2]))
	if !ok {
		stack[0] = uint64(StatusInvalidMemoryAccess)
		return
	}
	m, st := v.headerMap(u32(stack[0]), true)
	if st != StatusOK {
		stack[0] = uint64(st)
		return
	}
	var tmp HeaderMap
	if err := tmp.ParseSerialized(data); err != nil {
		stack[0] = uint64(StatusBadArgument)
		return
	}
	m.CopyFrom(&tmp)
	stack[0] = uint64(StatusOK)
}

// proxy_get_header_map_value(map_type, key_data, key_size, return_value_data, return_value_size):
// the FIRST value of the key, as Envoy returns it.
func proxyGetHeaderMapValue(ctx ctxT, _ api.Module, stack []uint64) {
	v := vmOf(ctx)
	key, ok := v.read(u32(stack[1]), u32(stack[2]))
	if !ok {
		stack[0] = uint64(StatusInvalidMemoryAccess)
		return
	}
	m, st := v.headerMap(u32(stack[0]), false)
	if st != StatusOK {
		stack[0] = uint64(st)
		return
	}
	i := indexBytes(m, key)
	if i < 0 {
		stack[0] = uint64(StatusNotFound)
		return
	}
	// The value lives in Go memory, so it stays valid while the guest allocates.
	stack[0] = uint64(v.copyOut(m.pairs[i].value, u32(stack[3]), u32(stack[4])))
}

func indexBytes(m *HeaderMap, key []byte) int {
	for i := 0; i < m.n; i++ {
		if equalFoldLower(m.pairs[i].key, key) {
			return i
		}
	}
	return -1
}

// proxy_add_header_map_value(map_type, key_data, key_size, value_data, value_size)
func proxyAddHeaderMapValue(ctx ctxT, _ api.Module, stack []uint64) {
	writeHeaderPair(ctx, stack, addPair)
}

// proxy_replace_header_map_value(map_type, key_data, key_size, value_data, value_size):
// sets the first value, removes the others, adds the key when absent.
func proxyReplaceHeaderMapValue(ctx ctxT, _ api.Module, stack []uint64) {
	writeHeaderPair(ctx, stack, setPair)
}

// writeHeaderPair reads a key and value from guest memory and applies write
// to the map the first argument names: the shared body of add and replace.
func writeHeaderPair(ctx ctxT, stack []uint64, write func(m *HeaderMap, key, val []byte) error) {
	v := vmOf(ctx)
	key, ok1 := v.read(u32(stack[1]), u32(stack[2]))
	val, ok2 := v.read(u32(stack[3]), u32(stack[4]))
	if !ok1 || !ok2 {
		stack[0] = uint64(StatusInvalidMemoryAccess)
		return
	}
	m, st := v.headerMap(u32(stack[0]), true)
	if st != StatusOK {
		stack[0] = uint64(st)
		return
	}
	if write(m, key, val) != nil {
		stack[0] = uint64(StatusBadArgument)
		return
	}
	stack[0] = uint64(StatusOK)
}

// proxy_remove_header_map_value(map_type, key_data, key_size): removes every
// value; removing an absent key is OK.
func proxyRemoveHeaderMapValue(ctx ctxT, _ api.Module, stack []uint64) {
	v := vmOf(ctx)
	key, ok := v.read(u32(stack[1]), u32(stack[2]))
	if !ok {
		stack[0] = uint64(StatusInvalidMemoryAccess)
		return
	}
	m, st := v.headerMap(u32(stack[0]), true)
	if st != StatusOK {
		stack[0] = uint64(st)
		return
	}
	delPairs(m, key)
	stack[0] = uint64(StatusOK)
}

// proxy_get_header_map_size(map_type, return_size_ptr): the serialized size
// in bytes, as Envoy reports it.
func proxyGetHeaderMapSize(ctx ctxT, _ api.Module, stack []uint64) {
	v := vmOf(ctx)
	m, st := v.headerMap(u32(stack[0]), false)
	if st != StatusOK {
		stack[0] = uint64(st)
		return
	}
	size := 4 + 8*m.n + m.size + 2*m.n
	if !v.writeU32(u32(stack[1]), uint32(size)) {
		stack[0] = uint64(StatusInvalidMemoryAccess)
		return
	}
	stack[0] = uint64(StatusOK)
}
