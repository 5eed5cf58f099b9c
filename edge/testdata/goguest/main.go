// Command goguest is a minimal proxy-wasm guest written in Go without an
// SDK, built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared by the host's
// tests. It checks what Go guests need from a host: _initialize, re-entrant
// proxy_on_memory_allocate, WASI clocks and random, ticks, HTTP calls.
package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
	"unsafe"
)

func main() {}

//go:wasmimport env proxy_log
func proxyLog(level uint32, ptr *byte, size uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(typ uint32, kp *byte, ks uint32, rp *uint32, rs *uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(typ uint32, kp *byte, ks uint32, vp *byte, vs uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(typ, start, max uint32, rp *uint32, rs *uint32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(typ, start, size uint32, data *byte, dataLen uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(code uint32, dp *byte, dl uint32, bp *byte, bl uint32, hp *byte, hl uint32, grpc int32) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriod(ms uint32) uint32

//go:wasmimport env proxy_http_call
func proxyHTTPCall(up *byte, upLen uint32, h *byte, hLen uint32, b *byte, bLen uint32, t *byte, tLen uint32, timeout uint32, id *uint32) uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(id uint32) uint32

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(typ uint32) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetSharedData(kp *byte, ks uint32, vp *byte, vs uint32, cas uint32) uint32

var (
	pinned  = map[uintptr][]byte{}
	config  string
	ticks   int
	pending = map[uint32]uint32{}
	echo    = map[uint32]bool{}
	traps   = map[uint32]string{} // stream → "request" or "response": its body callback traps
	started = time.Now()
)

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func allocate(size uint32) *byte {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	p := &b[0]
	pinned[uintptr(unsafe.Pointer(p))] = b
	return p
}

func take(addr, n uint32) string {
	if addr == 0 {
		return ""
	}
	p := (*byte)(unsafe.Pointer(uintptr(addr)))
	s := string(unsafe.Slice(p, n))
	delete(pinned, uintptr(addr))
	return s
}

func ptr(s string) (*byte, uint32) {
	if s == "" {
		return nil, 0
	}
	b := []byte(s)
	return &b[0], uint32(len(b))
}

func header(typ uint32, key string) string {
	kp, kl := ptr(key)
	var rp uint32
	var rs uint32
	if proxyGetHeaderMapValue(typ, kp, kl, &rp, &rs) != 0 {
		return ""
	}
	return take(rp, rs)
}

func addHeader(typ uint32, k, v string) {
	kp, kl := ptr(k)
	vp, vl := ptr(v)
	proxyAddHeaderMapValue(typ, kp, kl, vp, vl)
}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) {}

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) bool { return true }

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) bool {
	var rp uint32
	var rs uint32
	if size > 0 && proxyGetBufferBytes(7, 0, size, &rp, &rs) == 0 {
		config = take(rp, rs)
	}
	proxySetTickPeriod(1000)
	return config != "reject"
}

//go:wasmexport proxy_on_tick
func onTick(root uint32) {
	ticks++
	k, kl := ptr("goguest.ticks")
	v, vl := ptr(string(rune('0' + ticks%10)))
	proxySetSharedData(k, kl, v, vl, 0)
}

// The call's headers: :method GET, :path /lookup, :authority origin.
func serialize(pairs ...string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)/2))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	}
	for _, p := range pairs {
		b = append(append(b, p...), 0)
	}
	return b
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n uint32, eos bool) uint32 {
	var r [8]byte
	_, _ = rand.Read(r[:])
	addHeader(0, "x-go-random", hex.EncodeToString(r[:]))
	addHeader(0, "x-go-time", time.Now().UTC().Format(time.RFC3339))
	addHeader(0, "x-go-config", config)
	switch header(0, ":path") {
	case "/trap-request-body":
		traps[id] = "request"
	case "/trap-response-body":
		traps[id] = "response"
	}
	if header(0, ":path") == "/body-echo" && !eos {
		echo[id] = true
		return 1 // stop iteration until the whole body has arrived
	}
	if header(0, ":path") == "/call" {
		up, ul := ptr("backend")
		h := serialize(":method", "GET", ":path", "/lookup", ":authority", "origin")
		var callID uint32
		if proxyHTTPCall(up, ul, &h[0], uint32(len(h)), nil, 0, nil, 0, 3000, &callID) != 0 {
			return 0
		}
		pending[callID] = id
		return 1
	}
	return 0
}

//go:wasmexport proxy_on_http_call_response
func onHTTPCallResponse(root, callID, nh, bs, nt uint32) {
	id, ok := pending[callID]
	delete(pending, callID)
	if !ok || proxySetEffectiveContext(id) != 0 {
		return
	}
	if nh > 0 {
		addHeader(0, "x-answer", header(6, "x-answer"))
	}
	proxyContinueStream(0)
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(id, n uint32, eos bool) uint32 {
	m, ml := ptr("go guest response")
	proxyLog(2, m, ml)
	return 0
}

// Bodies get "+go" appended, so tests see that body callbacks ran and that
// proxy_set_buffer_bytes appends.
func appendToBody(typ, size uint32, eos bool) uint32 {
	if eos {
		d, n := ptr("+go")
		proxySetBufferBytes(typ, size, 0, d, n)
	}
	return 0
}

//go:wasmexport proxy_on_request_body
func onRequestBody(id, size uint32, eos bool) uint32 {
	if traps[id] == "request" {
		panic("goguest: trap in the request body callback")
	}
	if !echo[id] {
		return appendToBody(0, size, eos)
	}
	if !eos {
		return 1 // keep buffering
	}
	delete(echo, id)
	var rp, rs uint32
	if proxyGetBufferBytes(0, 0, size, &rp, &rs) != 0 {
		return 0
	}
	body, bl := ptr("got:" + take(rp, rs))
	proxySendLocalResponse(200, nil, 0, body, bl, nil, 0, -1)
	return 1
}

//go:wasmexport proxy_on_response_body
func onResponseBody(id, size uint32, eos bool) uint32 {
	if traps[id] == "response" {
		panic("goguest: trap in the response body callback")
	}
	return appendToBody(1, size, eos)
}

//go:wasmexport proxy_on_done
func onDone(id uint32) bool { return true }

//go:wasmexport proxy_on_log
func onLog(id uint32) {}

//go:wasmexport proxy_on_delete
func onDelete(id uint32) { delete(traps, id) }
