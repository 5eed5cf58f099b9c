package wasmhost

import (
	"github.com/sessionedge/sessionedge/proxywasm"
)

// headerMap returns the map of type t in the current context. A map that
// exists in the ABI but not now (response headers during the request phase,
// HTTP-call maps outside proxy_on_http_call_response, any stream map from the
// root context) is NOT_FOUND; an unknown type is BAD_ARGUMENT. HTTP-call
// response maps are read-only.
func (v *vm) headerMap(t proxywasm.MapType, write bool) (*HeaderMap, proxywasm.Status) {
	switch t {
	case proxywasm.MapRequestHeaders, proxywasm.MapRequestTrailers, proxywasm.MapResponseHeaders, proxywasm.MapResponseTrailers:
		s := v.cur
		if s == nil || !s.accessible() {
			return nil, proxywasm.StatusNotFound
		}
		switch t {
		case proxywasm.MapRequestHeaders:
			return &s.reqHeaders, proxywasm.StatusOK
		case proxywasm.MapRequestTrailers:
			return &s.reqTrailers, proxywasm.StatusOK
		}
		if !s.hasResp {
			return nil, proxywasm.StatusNotFound
		}
		if t == proxywasm.MapResponseHeaders {
			return &s.respHeaders, proxywasm.StatusOK
		}
		return &s.respTrailers, proxywasm.StatusOK
	case proxywasm.MapGRPCInitialMetadata, proxywasm.MapGRPCTrailingMetadata:
		return nil, proxywasm.StatusNotFound
	case proxywasm.MapHTTPCallResponseHeaders, proxywasm.MapHTTPCallResponseTrailers:
		if v.callResp == nil {
			return nil, proxywasm.StatusNotFound
		}
		if write {
			return nil, proxywasm.StatusBadArgument
		}
		if t == proxywasm.MapHTTPCallResponseHeaders {
			return &v.callResp.Headers, proxywasm.StatusOK
		}
		return &v.callResp.Trailers, proxywasm.StatusOK
	}
	return nil, proxywasm.StatusBadArgument
}

// proxy_get_header_map_pairs(map_type, return_map_data_ptr, return_map_size_ptr)
func proxyGetHeaderMapPairs(v *vm, stack []uint64) proxywasm.Status {
	m, st := v.headerMap(proxywasm.MapType(stack[0]), false)
	if st != proxywasm.StatusOK {
		return st
	}
	v.scratch = m.AppendSerialized(v.scratch[:0])
	return v.copyOut(v.scratch, u32(stack[1]), u32(stack[2]))
}

// mapArg returns the map named by the first argument and the bytes the
// second and third give (a key, or a serialized map), checked in the ABI's
// order: guest memory first, then the map.
func (v *vm) mapArg(stack []uint64, write bool) (*HeaderMap, []byte, proxywasm.Status) {
	b, ok := v.read(u32(stack[1]), u32(stack[2]))
	if !ok {
		return nil, nil, proxywasm.StatusInvalidMemoryAccess
	}
	m, st := v.headerMap(proxywasm.MapType(stack[0]), write)
	return m, b, st
}

// proxy_set_header_map_pairs(map_type, map_data, map_size): replaces the map.
// Malformed or oversized data is BAD_ARGUMENT and leaves the map unchanged
// (Envoy's host core would replace the map with an empty one).
func proxySetHeaderMapPairs(v *vm, stack []uint64) proxywasm.Status {
	m, data, st := v.mapArg(stack, true)
	if st == proxywasm.StatusOK {
		if checkSerialized(data) != nil {
			st = proxywasm.StatusBadArgument
		} else {
			_ = m.ParseSerialized(data)
		}
	}
	return st
}

// proxy_get_header_map_value(map_type, key_data, key_size, return_value_data, return_value_size):
// the FIRST value of the key, as Envoy returns it.
func proxyGetHeaderMapValue(v *vm, stack []uint64) proxywasm.Status {
	m, key, st := v.mapArg(stack, false)
	if st == proxywasm.StatusOK {
		if i := indexBytes(m, key); i < 0 {
			st = proxywasm.StatusNotFound
		} else {
			// The value lives in Go memory, so it stays valid while the guest allocates.
			st = v.copyOut(m.pairs[i].value, u32(stack[3]), u32(stack[4]))
		}
	}
	return st
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
func proxyAddHeaderMapValue(v *vm, stack []uint64) proxywasm.Status {
	return writeHeaderPair(v, stack, addPair)
}

// proxy_replace_header_map_value(map_type, key_data, key_size, value_data, value_size):
// sets the first value, removes the others, adds the key when absent.
func proxyReplaceHeaderMapValue(v *vm, stack []uint64) proxywasm.Status {
	return writeHeaderPair(v, stack, setPair)
}

// writeHeaderPair reads a key and value from guest memory and applies write
// to the map the first argument names: the shared body of add and replace.
func writeHeaderPair(v *vm, stack []uint64, write func(m *HeaderMap, key, val []byte) error) proxywasm.Status {
	val, ok := v.read(u32(stack[3]), u32(stack[4]))
	m, key, st := v.mapArg(stack, true)
	switch {
	case !ok:
		st = proxywasm.StatusInvalidMemoryAccess
	case st == proxywasm.StatusOK && write(m, key, val) != nil:
		st = proxywasm.StatusBadArgument
	}
	return st
}

// proxy_remove_header_map_value(map_type, key_data, key_size): removes every
// value; removing an absent key is OK.
func proxyRemoveHeaderMapValue(v *vm, stack []uint64) proxywasm.Status {
	m, key, st := v.mapArg(stack, true)
	if st == proxywasm.StatusOK {
		delPairs(m, key)
	}
	return st
}

// proxy_get_header_map_size(map_type, return_size_ptr): the serialized size
// in bytes, as Envoy reports it.
func proxyGetHeaderMapSize(v *vm, stack []uint64) proxywasm.Status {
	m, st := v.headerMap(proxywasm.MapType(stack[0]), false)
	if st != proxywasm.StatusOK {
		return st
	}
	if !v.writeU32(u32(stack[1]), uint32(m.SerializedSize())) {
		return proxywasm.StatusInvalidMemoryAccess
	}
	return proxywasm.StatusOK
}
