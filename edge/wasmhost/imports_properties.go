package wasmhost

import (
	"bytes"
	"encoding/binary"
	"net"
	"strconv"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// property appends the value of a NUL-joined property path to dst. Values
// are strings except source.port, destination.port and response.code, which
// are 8-byte little-endian integers as Envoy returns them.
func (v *vm) property(dst, path []byte) ([]byte, bool) {
	h := v.host
	switch string(path) {
	case "plugin_name":
		return append(dst, h.cfg.PluginName...), true
	case "plugin_root_id":
		return append(dst, h.cfg.RootID...), true
	case "plugin_vm_id":
		return append(dst, h.cfg.VMID...), true
	}
	s := v.cur
	if s != nil && s.accessible() {
		if p, ok := s.props[string(path)]; ok {
			return append(dst, p...), true
		}
		switch string(path) {
		case "request\x00path":
			return header(dst, &s.reqHeaders, ":path")
		case "request\x00url_path":
			dst, ok := header(dst, &s.reqHeaders, ":path")
			if i := bytes.IndexByte(dst, '?'); i >= 0 {
				dst = dst[:i]
			}
			return dst, ok
		case "request\x00query":
			i := indexBytes(&s.reqHeaders, []byte(":path"))
			if i < 0 {
				return dst, false
			}
			p := s.reqHeaders.pairs[i].value
			if q := bytes.IndexByte(p, '?'); q >= 0 {
				return append(dst, p[q+1:]...), true
			}
			return dst, true
		case "request\x00method":
			return header(dst, &s.reqHeaders, ":method")
		case "request\x00host":
			return header(dst, &s.reqHeaders, ":authority")
		case "request\x00scheme":
			return header(dst, &s.reqHeaders, ":scheme")
		case "request\x00id":
			if s.info.ID != "" {
				return append(dst, s.info.ID...), true
			}
			return header(dst, &s.reqHeaders, "x-request-id")
		case "request\x00protocol":
			return append(dst, s.info.Protocol...), s.info.Protocol != ""
		case "source\x00address":
			return append(dst, s.info.SourceAddress...), s.info.SourceAddress != ""
		case "source\x00port":
			_, port, err := net.SplitHostPort(s.info.SourceAddress)
			if err != nil {
				return dst, false
			}
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return dst, false
			}
			return binary.LittleEndian.AppendUint64(dst, n), true
		case "response\x00code":
			if !s.hasResp {
				return dst, false
			}
			i := indexBytes(&s.respHeaders, []byte(":status"))
			if i < 0 {
				return dst, false
			}
			n, err := strconv.ParseUint(string(s.respHeaders.pairs[i].value), 10, 16)
			if err != nil {
				return dst, false
			}
			return binary.LittleEndian.AppendUint64(dst, n), true
		}
		if rest, ok := bytes.CutPrefix(path, []byte("request\x00headers\x00")); ok {
			if i := indexBytes(&s.reqHeaders, rest); i >= 0 {
				return append(dst, s.reqHeaders.pairs[i].value...), true
			}
			return dst, false
		}
		return dst, false
	}
	if p, ok := v.rootProps[string(path)]; ok {
		return append(dst, p...), true
	}
	return dst, false
}

func header(dst []byte, m *HeaderMap, key string) ([]byte, bool) {
	for i := 0; i < m.n; i++ {
		if equalFoldLower(m.pairs[i].key, key) {
			return append(dst, m.pairs[i].value...), true
		}
	}
	return dst, false
}

// proxy_get_property(path_ptr, path_size, return_value_data, return_value_size)
func proxyGetProperty(v *vm, stack []uint64) proxywasm.Status {
	path, ok := v.read(u32(stack[0]), u32(stack[1]))
	if !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	var found bool
	v.scratch, found = v.property(v.scratch[:0], path)
	if !found {
		return proxywasm.StatusNotFound
	}
	return v.copyOut(v.scratch, u32(stack[2]), u32(stack[3]))
}

// proxy_set_property(path_ptr, path_size, value_ptr, value_size): stores a
// property on the effective context (a stream, or the root context), readable
// back with proxy_get_property. Built-in paths cannot be overwritten.
func proxySetProperty(v *vm, stack []uint64) proxywasm.Status {
	path, ok1 := v.read(u32(stack[0]), u32(stack[1]))
	val, ok2 := v.read(u32(stack[2]), u32(stack[3]))
	if !ok1 || !ok2 {
		return proxywasm.StatusInvalidMemoryAccess
	}
	if len(path) == 0 || bytes.HasPrefix(path, []byte("request\x00")) || bytes.HasPrefix(path, []byte("source\x00")) ||
		bytes.HasPrefix(path, []byte("response\x00")) || bytes.HasPrefix(path, []byte("plugin_")) {
		return proxywasm.StatusBadArgument
	}
	if s := v.cur; s != nil {
		if s.props == nil {
			s.props = make(map[string][]byte)
		}
		s.props[string(path)] = append([]byte(nil), val...)
	} else {
		if v.rootProps == nil {
			v.rootProps = make(map[string][]byte)
		}
		v.rootProps[string(path)] = append([]byte(nil), val...)
	}
	return proxywasm.StatusOK
}
