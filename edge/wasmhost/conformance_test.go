package wasmhost

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// The ABI conformance suite calls every host function through the probe_*
// exports of edge/testdata/conformance.wat: a real guest calling the real
// imports, in a context and phase the test chooses.

const (
	oob       = 0xFFFFFFF0 // an address beyond guest memory
	addrKey   = 1024
	addrVal   = 2048
	addrRet   = 4096 // u32 return slot
	addrRet2  = 4100 // u32 return slot
	addrRet3  = 4104
	addrBlob  = 8192
	addrLarge = 16384
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time  { return c.t }
func (c fixedClock) Nanotime() int64 { return 42 }

type probe struct {
	t *testing.T
	h *Host
	v *vm
}

func newProbe(t *testing.T, cfg Config) *probe {
	t.Helper()
	if cfg.WasmPath == "" && cfg.Wasm == nil {
		cfg.WasmPath = "../testdata/conformance.wasm"
	}
	cfg.VMs = 1
	cfg.ManualTicks = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = fixedClock{time.Unix(1700000000, 5)}
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return &probe{t: t, h: h, v: h.slots[0].Load()}
}

func (p *probe) write(addr uint32, b []byte) {
	p.t.Helper()
	if !p.v.mem.Write(addr, b) {
		p.t.Fatalf("write at %d", addr)
	}
}

func (p *probe) str(addr uint32, s string) (uint64, uint64) {
	p.write(addr, []byte(s))
	return uint64(addr), uint64(len(s))
}

func (p *probe) u32(addr uint32) uint32 {
	v, _ := p.v.mem.ReadUint32Le(addr)
	return v
}

// ret returns the bytes a host function returned through (addrRet, addrRet2).
func (p *probe) ret() []byte {
	ptr, size := p.u32(addrRet), p.u32(addrRet2)
	b, ok := p.v.mem.Read(ptr, size)
	if !ok {
		p.t.Fatalf("returned range %d+%d out of memory", ptr, size)
	}
	return append([]byte(nil), b...)
}

// stream creates a stream whose request headers are pairs.
func (p *probe) stream(pairs ...string) *Stream {
	p.t.Helper()
	s, err := p.h.NewStream(StreamInfo{ID: "rid-1", SourceAddress: "192.0.2.7:4242", Protocol: "HTTP/1.1"})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(s.Close)
	for i := 0; i+1 < len(pairs); i += 2 {
		_ = s.reqHeaders.Add(pairs[i], pairs[i+1])
	}
	return s
}

// call runs probe_<fn> with s as the effective context (nil: root) in phase ph.
func (p *probe) call(s *Stream, ph phase, fn string, args ...uint64) proxywasm.Status {
	p.t.Helper()
	v := p.v
	f := v.mod.ExportedFunction("probe_" + fn)
	if f == nil {
		p.t.Fatalf("no probe for %s", fn)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var prev streamState
	if s != nil {
		prev = s.state
		s.state = stateInCallback
	}
	v.cur, v.phase = s, ph
	res, err := f.Call(v.ctx, args...)
	v.cur, v.phase = nil, phaseNone
	if s != nil && s.state == stateInCallback {
		s.state = prev
	}
	if err != nil {
		p.t.Fatalf("%s trapped: %v", fn, err)
	}
	return proxywasm.Status(res[0])
}

func serialize(pairs ...string) []byte {
	var m HeaderMap
	for i := 0; i+1 < len(pairs); i += 2 {
		_ = m.Add(pairs[i], pairs[i+1])
	}
	return m.AppendSerialized(nil)
}

type abiCase struct {
	name string
	run  func(p *probe) proxywasm.Status
	want proxywasm.Status
	// check runs after a successful status match.
	check func(t *testing.T, p *probe)
}

func runCases(t *testing.T, cfg Config, cases []abiCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newProbe(t, cfg)
			if got := c.run(p); got != c.want {
				t.Fatalf("status = %v, want %v", got, c.want)
			}
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

func TestABILogging(t *testing.T) {
	runCases(t, Config{}, []abiCase{
		{"log ok", func(p *probe) proxywasm.Status {
			a, n := p.str(addrKey, "hello")
			return p.call(nil, phaseTick, "proxy_log", 2, a, n)
		}, proxywasm.StatusOK, nil},
		{"log bad level", func(p *probe) proxywasm.Status {
			a, n := p.str(addrKey, "hello")
			return p.call(nil, phaseTick, "proxy_log", 9, a, n)
		}, proxywasm.StatusBadArgument, nil},
		{"log out of bounds", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_log", 2, oob, 100)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"get log level", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_get_log_level", addrRet)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := p.u32(addrRet); got != 2 {
				t.Errorf("level = %d, want 2 (info)", got)
			}
		}},
		{"get log level out of bounds", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_get_log_level", oob)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"current time", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_get_current_time_nanoseconds", addrRet)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			b, _ := p.v.mem.Read(addrRet, 8)
			if got := binary.LittleEndian.Uint64(b); got != 1700000000_000000005 {
				t.Errorf("time = %d", got)
			}
		}},
		{"current time out of bounds", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_get_current_time_nanoseconds", oob)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"tick period", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseConfigure, "proxy_set_tick_period_milliseconds", 250)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := p.v.tickPeriod.Load(); got != 250 {
				t.Errorf("tick period = %d", got)
			}
		}},
	})
}

func TestABIHeaderMaps(t *testing.T) {
	var s *Stream
	withStream := func(p *probe) *Stream {
		s = p.stream(":path", "/a", "cookie", "a=1", "Cookie", "b=2", "x-one", "1")
		return s
	}
	// writePair calls fn (add or replace) with key and val on the request
	// headers of withStream.
	writePair := func(fn, key, val string) func(*probe) proxywasm.Status {
		return func(p *probe) proxywasm.Status {
			k, kn := p.str(addrKey, key)
			v, vn := p.str(addrVal, val)
			return p.call(withStream(p), phaseStream, fn, 0, k, kn, v, vn)
		}
	}
	runCases(t, Config{}, []abiCase{
		{"get pairs", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_pairs", 0, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			var m HeaderMap
			if err := m.ParseSerialized(p.ret()); err != nil || m.Len() != 4 || strings.Join(m.Values("cookie"), ",") != "a=1,b=2" {
				t.Errorf("pairs: %v %v", err, m.Values("cookie"))
			}
		}},
		{"get pairs of response headers during the request", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_pairs", 2, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"get pairs from the root context", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_get_header_map_pairs", 0, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"get pairs of a stream the proxy owns", func(p *probe) proxywasm.Status {
			s := withStream(p)
			p.v.mu.Lock()
			p.v.cur = s // effective, but not in a callback nor paused
			p.v.mu.Unlock()
			return p.call(nil, phaseTick, "proxy_get_header_map_pairs", 0, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"get pairs of an unknown map", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_pairs", 99, addrRet, addrRet2)
		}, proxywasm.StatusBadArgument, nil},
		{"get pairs out of bounds", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_pairs", 0, oob, addrRet2)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"get pairs of the HTTP-call response", func(p *probe) proxywasm.Status {
			p.v.callResp = &CallResponse{}
			_ = p.v.callResp.Headers.Add(":status", "200")
			return p.call(nil, phaseCallResponse, "proxy_get_header_map_pairs", 6, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			var m HeaderMap
			if err := m.ParseSerialized(p.ret()); err != nil || m.Len() != 1 {
				t.Errorf("call response pairs: %v %d", err, m.Len())
			}
		}},
		{"get pairs of the HTTP-call response outside the callback", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_get_header_map_pairs", 6, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"set pairs", func(p *probe) proxywasm.Status {
			b := serialize("x-a", "1", "x-a", "2")
			p.write(addrBlob, b)
			return p.call(withStream(p), phaseStream, "proxy_set_header_map_pairs", 0, addrBlob, uint64(len(b)))
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if s.reqHeaders.Len() != 2 || strings.Join(s.reqHeaders.Values("x-a"), ",") != "1,2" {
				t.Errorf("map after set: %v", s.reqHeaders.Values("x-a"))
			}
		}},
		{"set pairs without NUL", func(p *probe) proxywasm.Status {
			b := serialize("x-a", "1")
			b[len(b)-1] = 'x'
			p.write(addrBlob, b)
			return p.call(withStream(p), phaseStream, "proxy_set_header_map_pairs", 0, addrBlob, uint64(len(b)))
		}, proxywasm.StatusBadArgument, func(t *testing.T, p *probe) {
			if s.reqHeaders.Len() != 4 {
				t.Error("a malformed map must leave the map unchanged")
			}
		}},
		{"set pairs with trailing bytes", func(p *probe) proxywasm.Status {
			b := append(serialize("x-a", "1"), 0)
			p.write(addrBlob, b)
			return p.call(withStream(p), phaseStream, "proxy_set_header_map_pairs", 0, addrBlob, uint64(len(b)))
		}, proxywasm.StatusBadArgument, nil},
		{"set pairs over 1024 pairs", func(p *probe) proxywasm.Status {
			b := binary.LittleEndian.AppendUint32(nil, 1025)
			for i := 0; i < 1025; i++ {
				b = binary.LittleEndian.AppendUint32(b, 1)
				b = binary.LittleEndian.AppendUint32(b, 1)
			}
			for i := 0; i < 1025; i++ {
				b = append(b, 'k', 0, 'v', 0)
			}
			p.write(addrLarge, b)
			return p.call(withStream(p), phaseStream, "proxy_set_header_map_pairs", 0, addrLarge, uint64(len(b)))
		}, proxywasm.StatusBadArgument, nil},
		{"set pairs with a huge count", func(p *probe) proxywasm.Status {
			b := binary.LittleEndian.AppendUint32(nil, 0xFFFFFFFF)
			p.write(addrBlob, b)
			return p.call(withStream(p), phaseStream, "proxy_set_header_map_pairs", 0, addrBlob, 4)
		}, proxywasm.StatusBadArgument, nil},
		{"set pairs out of bounds", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_set_header_map_pairs", 0, oob, 64)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"set pairs of the HTTP-call response", func(p *probe) proxywasm.Status {
			p.v.callResp = &CallResponse{}
			b := serialize("a", "b")
			p.write(addrBlob, b)
			return p.call(nil, phaseCallResponse, "proxy_set_header_map_pairs", 6, addrBlob, uint64(len(b)))
		}, proxywasm.StatusBadArgument, nil},
		{"get value returns the first", func(p *probe) proxywasm.Status {
			k, n := p.str(addrKey, "COOKIE")
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_value", 0, k, n, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := string(p.ret()); got != "a=1" {
				t.Errorf("value = %q", got)
			}
		}},
		{"get value missing", func(p *probe) proxywasm.Status {
			k, n := p.str(addrKey, "nope")
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_value", 0, k, n, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"get value key out of bounds", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_value", 0, oob, 8, addrRet, addrRet2)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"get value return out of bounds", func(p *probe) proxywasm.Status {
			k, n := p.str(addrKey, "x-one")
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_value", 0, k, n, addrRet, oob)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"add keeps duplicates and lower-cases", writePair("proxy_add_header_map_value", "X-One", "2"), proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := strings.Join(s.reqHeaders.Values("x-one"), ","); got != "1,2" {
				t.Errorf("x-one = %q", got)
			}
			if k, _ := s.reqHeaders.Pair(4); string(k) != "x-one" {
				t.Errorf("key = %q", k)
			}
		}},
		{"add from the root context", func(p *probe) proxywasm.Status {
			k, kn := p.str(addrKey, "a")
			return p.call(nil, phaseTick, "proxy_add_header_map_value", 0, k, kn, k, kn)
		}, proxywasm.StatusNotFound, nil},
		{"add out of bounds", func(p *probe) proxywasm.Status {
			k, kn := p.str(addrKey, "a")
			return p.call(withStream(p), phaseStream, "proxy_add_header_map_value", 0, k, kn, oob, 10)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"add beyond 1024 pairs", func(p *probe) proxywasm.Status {
			st := withStream(p)
			for st.reqHeaders.Len() < proxywasm.MaxMapPairs {
				_ = st.reqHeaders.Add("k", "v")
			}
			k, kn := p.str(addrKey, "a")
			return p.call(st, phaseStream, "proxy_add_header_map_value", 0, k, kn, k, kn)
		}, proxywasm.StatusBadArgument, nil},
		{"replace removes duplicates", writePair("proxy_replace_header_map_value", "cookie", "c=3"), proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := strings.Join(s.reqHeaders.Values("cookie"), ","); got != "c=3" {
				t.Errorf("cookie = %q", got)
			}
		}},
		{"replace adds when absent", writePair("proxy_replace_header_map_value", "x-new", "n"), proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got, _ := s.reqHeaders.Get("x-new"); got != "n" {
				t.Errorf("x-new = %q", got)
			}
		}},
		{"remove all values", func(p *probe) proxywasm.Status {
			k, kn := p.str(addrKey, "Cookie")
			return p.call(withStream(p), phaseStream, "proxy_remove_header_map_value", 0, k, kn)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if len(s.reqHeaders.Values("cookie")) != 0 || s.reqHeaders.Len() != 2 {
				t.Errorf("after remove: %d pairs", s.reqHeaders.Len())
			}
		}},
		{"remove absent", func(p *probe) proxywasm.Status {
			k, kn := p.str(addrKey, "absent")
			return p.call(withStream(p), phaseStream, "proxy_remove_header_map_value", 0, k, kn)
		}, proxywasm.StatusOK, nil},
		{"remove out of bounds", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_remove_header_map_value", 0, oob, 3)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"size", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_size", 0, addrRet)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got, want := p.u32(addrRet), uint32(len(s.reqHeaders.AppendSerialized(nil))); got != want {
				t.Errorf("size = %d, want %d", got, want)
			}
		}},
		{"size out of bounds", func(p *probe) proxywasm.Status {
			return p.call(withStream(p), phaseStream, "proxy_get_header_map_size", 0, oob)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
	})
}

func TestABIBuffers(t *testing.T) {
	var s *Stream
	withBody := func(p *probe) *Stream {
		s = p.stream(":path", "/")
		s.reqBody = []byte("0123456789")
		return s
	}
	bodyIs := func(want string) func(*testing.T, *probe) {
		return func(t *testing.T, _ *probe) {
			if got := string(s.RequestBody()); got != want {
				t.Errorf("body = %q, want %q", got, want)
			}
		}
	}
	runCases(t, Config{PluginConfig: []byte(`{"a":1}`), VMConfig: []byte("vmconf")}, []abiCase{
		{"plugin configuration in configure", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseConfigure, "proxy_get_buffer_bytes", 7, 0, 100, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := string(p.ret()); got != `{"a":1}` {
				t.Errorf("config = %q", got)
			}
		}},
		{"vm configuration in vm start", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseVMStart, "proxy_get_buffer_bytes", 6, 2, 2, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := string(p.ret()); got != "co" {
				t.Errorf("vm config slice = %q", got)
			}
		}},
		{"plugin configuration outside configure", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_get_buffer_bytes", 7, 0, 100, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"request body slice", func(p *probe) proxywasm.Status {
			return p.call(withBody(p), phaseStream, "proxy_get_buffer_bytes", 0, 3, 4, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := string(p.ret()); got != "3456" {
				t.Errorf("body slice = %q", got)
			}
		}},
		{"start beyond the body", func(p *probe) proxywasm.Status {
			return p.call(withBody(p), phaseStream, "proxy_get_buffer_bytes", 0, 11, 4, addrRet, addrRet2)
		}, proxywasm.StatusBadArgument, nil},
		{"unknown buffer", func(p *probe) proxywasm.Status {
			return p.call(withBody(p), phaseStream, "proxy_get_buffer_bytes", 42, 0, 4, addrRet, addrRet2)
		}, proxywasm.StatusBadArgument, nil},
		{"response body during the request", func(p *probe) proxywasm.Status {
			return p.call(withBody(p), phaseStream, "proxy_get_buffer_bytes", 1, 0, 4, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"HTTP-call body outside the callback", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_get_buffer_bytes", 4, 0, 4, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"get out of bounds", func(p *probe) proxywasm.Status {
			return p.call(withBody(p), phaseStream, "proxy_get_buffer_bytes", 0, 0, 4, oob, addrRet2)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"set replaces a range", func(p *probe) proxywasm.Status {
			d, n := p.str(addrVal, "ab")
			return p.call(withBody(p), phaseStream, "proxy_set_buffer_bytes", 0, 2, 3, d, n)
		}, proxywasm.StatusOK, bodyIs("01ab56789")},
		{"set appends", func(p *probe) proxywasm.Status {
			d, n := p.str(addrVal, "!")
			return p.call(withBody(p), phaseStream, "proxy_set_buffer_bytes", 0, 10, 0, d, n)
		}, proxywasm.StatusOK, bodyIs("0123456789!")},
		{"set the plugin configuration", func(p *probe) proxywasm.Status {
			d, n := p.str(addrVal, "x")
			return p.call(nil, phaseConfigure, "proxy_set_buffer_bytes", 7, 0, 0, d, n)
		}, proxywasm.StatusNotFound, nil},
		{"set out of bounds", func(p *probe) proxywasm.Status {
			return p.call(withBody(p), phaseStream, "proxy_set_buffer_bytes", 0, 0, 0, oob, 4)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
	})
}

func TestABIStreamControl(t *testing.T) {
	var s *Stream
	hdrs := serialize("x-local", "1")
	runCases(t, Config{}, []abiCase{
		{"local response", func(p *probe) proxywasm.Status {
			s = p.stream(":path", "/")
			d, dn := p.str(addrKey, "why")
			b, bn := p.str(addrVal, "body")
			p.write(addrBlob, hdrs)
			return p.call(s, phaseStream, "proxy_send_local_response", 418, d, dn, b, bn, addrBlob, uint64(len(hdrs)), 0xFFFFFFFF)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			l := s.LocalResponse()
			if l.Status != 418 || l.Details != "why" || string(l.Body) != "body" || l.Headers.Len() != 1 || !s.answered {
				t.Errorf("local = %+v", l)
			}
		}},
		{"local response twice", func(p *probe) proxywasm.Status {
			s = p.stream(":path", "/")
			p.call(s, phaseStream, "proxy_send_local_response", 200, 0, 0, 0, 0, 0, 0, 0)
			return p.call(s, phaseStream, "proxy_send_local_response", 200, 0, 0, 0, 0, 0, 0, 0)
		}, proxywasm.StatusBadArgument, nil},
		{"local response from the root context", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_send_local_response", 200, 0, 0, 0, 0, 0, 0, 0)
		}, proxywasm.StatusBadArgument, nil},
		{"local response with a bad status", func(p *probe) proxywasm.Status {
			return p.call(p.stream(), phaseStream, "proxy_send_local_response", 42, 0, 0, 0, 0, 0, 0, 0)
		}, proxywasm.StatusBadArgument, nil},
		{"local response with malformed headers", func(p *probe) proxywasm.Status {
			p.write(addrBlob, hdrs[:len(hdrs)-1])
			return p.call(p.stream(), phaseStream, "proxy_send_local_response", 200, 0, 0, 0, 0, addrBlob, uint64(len(hdrs)-1), 0)
		}, proxywasm.StatusBadArgument, nil},
		{"local response out of bounds", func(p *probe) proxywasm.Status {
			return p.call(p.stream(), phaseStream, "proxy_send_local_response", 200, 0, 0, oob, 10, 0, 0, 0)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"continue from a stream", func(p *probe) proxywasm.Status {
			s = p.stream()
			return p.call(s, phaseStream, "proxy_continue_stream", 0)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if !s.continued {
				t.Error("stream not marked continued")
			}
		}},
		{"continue from the root context", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_continue_stream", 0)
		}, proxywasm.StatusBadArgument, nil},
		{"continue an unknown stream type", func(p *probe) proxywasm.Status {
			return p.call(p.stream(), phaseStream, "proxy_continue_stream", 9)
		}, proxywasm.StatusBadArgument, nil},
		{"continue a TCP stream", func(p *probe) proxywasm.Status {
			return p.call(p.stream(), phaseStream, "proxy_continue_stream", 2)
		}, proxywasm.StatusUnimplemented, nil},
		{"close stream", func(p *probe) proxywasm.Status {
			s = p.stream()
			return p.call(s, phaseStream, "proxy_close_stream", 0)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if s.verdict != Reset {
				t.Error("verdict not Reset")
			}
		}},
		{"effective context root", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_set_effective_context", rootContextID)
		}, proxywasm.StatusOK, nil},
		{"effective context stream", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseCallResponse, "proxy_set_effective_context", uint64(p.stream().id))
		}, proxywasm.StatusOK, nil},
		{"effective context unknown", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseCallResponse, "proxy_set_effective_context", 999)
		}, proxywasm.StatusBadArgument, nil},
		{"effective context deleted stream", func(p *probe) proxywasm.Status {
			st, _ := p.h.NewStream(StreamInfo{})
			id := st.id
			st.Close()
			return p.call(nil, phaseCallResponse, "proxy_set_effective_context", uint64(id))
		}, proxywasm.StatusBadArgument, nil},
		{"done outside on_done", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_done")
		}, proxywasm.StatusNotFound, nil},
		{"done in on_done", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseDone, "proxy_done")
		}, proxywasm.StatusOK, nil},
	})
}

func TestABIHTTPCall(t *testing.T) {
	got := make(chan *CallRequest, 1)
	cfg := Config{Clusters: Clusters{"c": ClusterFunc(func(ctx context.Context, req *CallRequest, resp *CallResponse) error {
		cp := &CallRequest{Cluster: req.Cluster, Body: append([]byte(nil), req.Body...), Timeout: req.Timeout}
		cp.Headers.CopyFrom(&req.Headers)
		got <- cp
		resp.SetStatus(204)
		return nil
	})}, MaxCallTimeout: 3 * time.Second}
	good := serialize(":method", "POST", ":path", "/x", ":authority", "svc")
	call := func(p *probe, cluster string, hdrs []byte, timeout uint64) proxywasm.Status {
		c, cn := p.str(addrKey, cluster)
		p.write(addrBlob, hdrs)
		b, bn := p.str(addrVal, "payload")
		return p.call(nil, phaseTick, "proxy_http_call", c, cn, addrBlob, uint64(len(hdrs)), b, bn, 0, 0, timeout, addrRet)
	}
	runCases(t, cfg, []abiCase{
		{"call", func(p *probe) proxywasm.Status { return call(p, "c", good, 500) }, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if id := p.u32(addrRet); id == 0 {
				t.Error("call id 0")
			}
			r := <-got
			if m, _ := r.Headers.Get(":method"); m != "POST" || string(r.Body) != "payload" || r.Timeout != 500*time.Millisecond {
				t.Errorf("request = %+v", r)
			}
			_ = p.h.WaitCalls(context.Background())
		}},
		{"timeout capped", func(p *probe) proxywasm.Status { return call(p, "c", good, 0) }, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if r := <-got; r.Timeout != 3*time.Second {
				t.Errorf("timeout = %v", r.Timeout)
			}
			_ = p.h.WaitCalls(context.Background())
		}},
		{"unknown cluster", func(p *probe) proxywasm.Status { return call(p, "nope", good, 100) }, proxywasm.StatusBadArgument, nil},
		{"missing :authority", func(p *probe) proxywasm.Status {
			return call(p, "c", serialize(":method", "GET", ":path", "/"), 100)
		}, proxywasm.StatusBadArgument, nil},
		{"malformed headers", func(p *probe) proxywasm.Status { return call(p, "c", good[:len(good)-2], 100) }, proxywasm.StatusBadArgument, nil},
		{"out of bounds", func(p *probe) proxywasm.Status {
			c, cn := p.str(addrKey, "c")
			return p.call(nil, phaseTick, "proxy_http_call", c, cn, oob, 40, 0, 0, 0, 0, 100, addrRet)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"status", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseCallResponse, "proxy_get_status", addrRet3, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if p.u32(addrRet3) != 0 {
				t.Errorf("code = %d", p.u32(addrRet3))
			}
		}},
		{"status out of bounds", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseCallResponse, "proxy_get_status", oob, addrRet, addrRet2)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
	})
}

func TestABISharedData(t *testing.T) {
	set := func(p *probe, key, val string, cas uint32) proxywasm.Status {
		k, kn := p.str(addrKey, key)
		v, vn := p.str(addrVal, val)
		return p.call(nil, phaseTick, "proxy_set_shared_data", k, kn, v, vn, uint64(cas))
	}
	get := func(p *probe, key string) proxywasm.Status {
		k, kn := p.str(addrKey, key)
		return p.call(nil, phaseTick, "proxy_get_shared_data", k, kn, addrRet, addrRet2, addrRet3)
	}
	runCases(t, Config{}, []abiCase{
		{"get missing", func(p *probe) proxywasm.Status { return get(p, "k") }, proxywasm.StatusNotFound, nil},
		{"set then get", func(p *probe) proxywasm.Status {
			set(p, "k", "v1", 0)
			return get(p, "k")
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if string(p.ret()) != "v1" || p.u32(addrRet3) == 0 {
				t.Errorf("value %q cas %d", p.ret(), p.u32(addrRet3))
			}
		}},
		{"absent key ignores cas", func(p *probe) proxywasm.Status { return set(p, "k", "v", 777) }, proxywasm.StatusOK, nil},
		{"stale cas", func(p *probe) proxywasm.Status {
			set(p, "k", "v1", 0)
			get(p, "k")
			cas := p.u32(addrRet3)
			set(p, "k", "v2", cas)
			return set(p, "k", "v3", cas)
		}, proxywasm.StatusCASMismatch, func(t *testing.T, p *probe) {
			get(p, "k")
			if string(p.ret()) != "v2" {
				t.Errorf("value = %q, want v2", p.ret())
			}
		}},
		{"cas 0 always sets", func(p *probe) proxywasm.Status {
			set(p, "k", "v1", 0)
			return set(p, "k", "v2", 0)
		}, proxywasm.StatusOK, nil},
		{"every set gets a new cas", func(p *probe) proxywasm.Status {
			set(p, "k", "v1", 0)
			get(p, "k")
			c1 := p.u32(addrRet3)
			set(p, "k", "v1", 0)
			get(p, "k")
			if p.u32(addrRet3) == c1 {
				return proxywasm.StatusInternalFailure
			}
			return proxywasm.StatusOK
		}, proxywasm.StatusOK, nil},
		{"get out of bounds", func(p *probe) proxywasm.Status {
			k, kn := p.str(addrKey, "k")
			return p.call(nil, phaseTick, "proxy_get_shared_data", k, kn, addrRet, addrRet2, oob)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"set out of bounds", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_set_shared_data", oob, 4, addrVal, 1, 0)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
	})
}

func TestABIProperties(t *testing.T) {
	cfg := Config{PluginName: "pn", RootID: "rid"}
	prop := func(want string, path ...string) abiCase {
		return abiCase{strings.Join(path, "."), func(p *probe) proxywasm.Status {
			s := p.stream(":authority", "shop.example", ":path", "/p?q=1", ":method", "PUT", ":scheme", "https")
			a, n := p.str(addrKey, strings.Join(path, "\x00"))
			return p.call(s, phaseStream, "proxy_get_property", a, n, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if got := string(p.ret()); got != want {
				t.Errorf("%v = %q, want %q", path, got, want)
			}
		}}
	}
	runCases(t, cfg, []abiCase{
		prop("/p?q=1", "request", "path"),
		prop("/p", "request", "url_path"),
		prop("PUT", "request", "method"),
		prop("shop.example", "request", "host"),
		prop("https", "request", "scheme"),
		prop("rid-1", "request", "id"),
		prop("192.0.2.7:4242", "source", "address"),
		prop("\x92\x10\x00\x00\x00\x00\x00\x00", "source", "port"),
		prop("pn", "plugin_name"),
		prop("rid", "plugin_root_id"),
		prop("shop.example", "request", "headers", ":authority"),
		{"request path from the root context", func(p *probe) proxywasm.Status {
			a, n := p.str(addrKey, "request\x00path")
			return p.call(nil, phaseTick, "proxy_get_property", a, n, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"unknown", func(p *probe) proxywasm.Status {
			a, n := p.str(addrKey, "no\x00such")
			return p.call(p.stream(), phaseStream, "proxy_get_property", a, n, addrRet, addrRet2)
		}, proxywasm.StatusNotFound, nil},
		{"out of bounds", func(p *probe) proxywasm.Status {
			return p.call(p.stream(), phaseStream, "proxy_get_property", oob, 8, addrRet, addrRet2)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"set and get back", func(p *probe) proxywasm.Status {
			s := p.stream()
			a, n := p.str(addrKey, "my\x00prop")
			v, vn := p.str(addrVal, "val")
			if st := p.call(s, phaseStream, "proxy_set_property", a, n, v, vn); st != proxywasm.StatusOK {
				return st
			}
			return p.call(s, phaseStream, "proxy_get_property", a, n, addrRet, addrRet2)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if string(p.ret()) != "val" {
				t.Errorf("got %q", p.ret())
			}
		}},
		{"set a built-in", func(p *probe) proxywasm.Status {
			a, n := p.str(addrKey, "request\x00path")
			return p.call(p.stream(), phaseStream, "proxy_set_property", a, n, a, n)
		}, proxywasm.StatusBadArgument, nil},
	})
}

func TestABIMetrics(t *testing.T) {
	define := func(p *probe, typ uint64, name string) (proxywasm.Status, uint64) {
		a, n := p.str(addrKey, name)
		st := p.call(nil, phaseConfigure, "proxy_define_metric", typ, a, n, addrRet)
		return st, uint64(p.u32(addrRet))
	}
	runCases(t, Config{}, []abiCase{
		{"counter", func(p *probe) proxywasm.Status {
			_, id := define(p, 0, "c")
			if _, id2 := define(p, 0, "c"); id2 != id {
				return proxywasm.StatusInternalFailure
			}
			p.call(nil, phaseTick, "proxy_increment_metric", id, 5)
			p.call(nil, phaseTick, "proxy_record_metric", id, 2)
			return p.call(nil, phaseTick, "proxy_get_metric", id, addrRet)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if v, ok := p.h.Metric("c"); !ok || v != 7 || p.u32(addrRet) != 7 {
				t.Errorf("counter = %d", v)
			}
		}},
		{"counter decrement", func(p *probe) proxywasm.Status {
			_, id := define(p, 0, "c")
			return p.call(nil, phaseTick, "proxy_increment_metric", id, uint64(1<<64-1))
		}, proxywasm.StatusBadArgument, nil},
		{"gauge", func(p *probe) proxywasm.Status {
			_, id := define(p, 1, "g")
			p.call(nil, phaseTick, "proxy_record_metric", id, 10)
			return p.call(nil, phaseTick, "proxy_increment_metric", id, uint64(1<<64-3))
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			if v, _ := p.h.Metric("g"); v != 7 {
				t.Errorf("gauge = %d", v)
			}
		}},
		{"histogram record", func(p *probe) proxywasm.Status {
			_, id := define(p, 2, "h.lat")
			return p.call(nil, phaseTick, "proxy_record_metric", id, 300)
		}, proxywasm.StatusOK, func(t *testing.T, p *probe) {
			var b strings.Builder
			_ = p.h.WriteMetrics(&b)
			if !strings.Contains(b.String(), `wasm_h_lat_bucket{le="500"} 1`) || !strings.Contains(b.String(), "wasm_h_lat_count 1") {
				t.Errorf("histogram export:\n%s", b.String())
			}
		}},
		{"histogram increment", func(p *probe) proxywasm.Status {
			_, id := define(p, 2, "h")
			return p.call(nil, phaseTick, "proxy_increment_metric", id, 1)
		}, proxywasm.StatusBadArgument, nil},
		{"histogram get", func(p *probe) proxywasm.Status {
			_, id := define(p, 2, "h")
			return p.call(nil, phaseTick, "proxy_get_metric", id, addrRet)
		}, proxywasm.StatusBadArgument, nil},
		{"bad type", func(p *probe) proxywasm.Status { st, _ := define(p, 7, "x"); return st }, proxywasm.StatusBadArgument, nil},
		{"unknown id", func(p *probe) proxywasm.Status { return p.call(nil, phaseTick, "proxy_increment_metric", 12345, 1) }, proxywasm.StatusNotFound, nil},
		{"define out of bounds", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_define_metric", 0, oob, 4, addrRet)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
		{"get out of bounds", func(p *probe) proxywasm.Status {
			_, id := define(p, 0, "c")
			return p.call(nil, phaseTick, "proxy_get_metric", id, oob)
		}, proxywasm.StatusInvalidMemoryAccess, nil},
	})
}

func TestABIUnimplemented(t *testing.T) {
	runCases(t, Config{}, []abiCase{
		{"shared queue", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_register_shared_queue", addrKey, 1, addrRet)
		}, proxywasm.StatusUnimplemented, nil},
		{"foreign function", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_call_foreign_function", addrKey, 1, 0, 0, addrRet, addrRet2)
		}, proxywasm.StatusUnimplemented, nil},
		{"import unknown to the host", func(p *probe) proxywasm.Status {
			return p.call(nil, phaseTick, "proxy_future_function", 0)
		}, proxywasm.StatusUnimplemented, nil},
	})
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no module", Config{}, ErrNoWasm},
		{"rejected configuration", Config{WasmPath: "../testdata/conformance.wasm", PluginConfig: []byte("reject")}, ErrConfigRejected},
		{"no ABI marker", Config{Wasm: []byte("\x00asm\x01\x00\x00\x00")}, ErrABIVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			_, err := New(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want.Error()) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
		})
	}
}
