//go:build !wasip1

// Package proxytest drives the guest filter like a proxy-wasm host does, so
// one set of scenarios (Run) runs against the filter compiled natively (with
// the abi mock) and against the .wasm module in the edge's own host
// (edge/wasmhost and its request lifecycle), which a Guest that is also a
// Host brings in.
package proxytest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// Guest is the set of proxy-wasm callbacks of one VM.
type Guest interface {
	ContextCreate(id, parent uint32)
	VMStart(root, size uint32) bool
	Configure(root, size uint32) bool
	Tick(root uint32)
	RequestHeaders(id, n uint32, eos bool) uint32
	RequestBody(id, size uint32, eos bool) uint32
	RequestTrailers(id, n uint32) uint32
	ResponseHeaders(id, n uint32, eos bool) uint32
	ResponseTrailers(id, n uint32) uint32
	HTTPCallResponse(root, token, nHeaders, bodySize, nTrailers uint32)
	Done(id uint32) bool
	Log(id uint32)
	Delete(id uint32)
}

// NewGuest makes a fresh VM whose host is m.
type NewGuest func(t testing.TB, m *abi.Mock) Guest

// Host is a real proxy-wasm host that runs the filter in place of the abi
// mock. A Guest that is also a Host is not called: the Env drives requests,
// ticks and HTTP-call answers through the Host, and reads what happened
// from it. Its Env keeps the clock (Env.Now) and tells the Host every change.
type Host interface {
	// LoadPlugin starts the VM with the plugin configuration and reports
	// whether the plugin accepted it.
	LoadPlugin(e *Env, config string) bool
	SetNow(now time.Time)
	// TickVMs runs proxy_on_tick.
	TickVMs()
	Logs() []abi.LogLine
	TickMs() uint32
	// Start runs a request (pairs without pseudo-headers) until it reaches
	// the upstream, is answered, or waits for the filter. With open unset
	// the request ends with its headers (body nil) or its body; with open
	// set the client has not finished it: HostStream.RequestTrailers ends
	// it, after the body if there is one.
	Start(method, path string, body []byte, open bool, pairs []abi.Pair) HostStream
	Pending() []*abi.MockCall
	Answer(c *abi.MockCall, status int, body []byte, pairs []abi.Pair)
	// ShareData uses the shared-data store of other; DisableSharedData
	// makes shared data unavailable. Both come before LoadPlugin.
	ShareData(other Host)
	DisableSharedData()
	// Metric returns the value of the guest's counter or gauge name over
	// every VM of the host (the VMs of a proxy add to one metric of a
	// name), 0 when no VM defined it.
	Metric(name string) int64
	// SupportsResponseTrailers reports whether the host delivers response
	// trailers (HostStream.ResponseTrailers).
	SupportsResponseTrailers() bool
}

// HostStream is one request through a Host.
type HostStream interface {
	// Paused reports whether the request waits for the filter.
	Paused() bool
	// Forwarded returns the request headers the upstream got (with the
	// pseudo-headers), nil while it has not reached the upstream.
	Forwarded() []abi.Pair
	Local() *abi.LocalResponse
	// RequestTrailers ends an open request (Host.Start) with the client's
	// trailers, as a proxy delivers them: after the body, or right after
	// the headers when there is none.
	RequestTrailers(pairs []abi.Pair)
	// Trailers returns the request trailers the upstream got, nil while
	// it has not read the request to its end.
	Trailers() []abi.Pair
	// Respond answers from the upstream and returns what the client gets.
	// An open request ends first, without trailers.
	Respond(pairs []abi.Pair) []abi.Pair
	// ResponseTrailers delivers the upstream's trailers after Respond and
	// returns what the client gets; only on a Host that
	// SupportsResponseTrailers.
	ResponseTrailers(pairs []abi.Pair) []abi.Pair
	// Finish ends the stream.
	Finish()
}

// Env is one VM with its mock host (or a Host) and a fake origin.
type Env struct {
	T      testing.TB
	M      *abi.Mock
	G      Guest
	Root   uint32
	Origin *Origin

	next uint32
	host Host
}

// NewEnv makes a VM with a new mock host. It is not configured yet.
func NewEnv(t testing.TB, newGuest NewGuest, origin *Origin) *Env {
	m := abi.NewMock()
	if origin != nil {
		m.NowNs = origin.Now.UnixNano()
	}
	abi.Use(m)
	e := &Env{T: t, M: m, Root: 1, next: 1, Origin: origin}
	e.G = newGuest(t, m)
	e.host, _ = e.G.(Host)
	return e
}

// use makes e's mock the host of the package-level abi functions.
func (e *Env) use() { abi.Use(e.M) }

// Logs returns what the filter logged.
func (e *Env) Logs() []abi.LogLine {
	if e.host != nil {
		return e.host.Logs()
	}
	return e.M.Logs
}

// TickMs returns the tick period the filter asked for.
func (e *Env) TickMs() uint32 {
	if e.host != nil {
		return e.host.TickMs()
	}
	return e.M.TickMs
}

// ShareData gives e the shared-data store of other, as the VMs of one proxy
// share one; call it before Configure.
func (e *Env) ShareData(other *Env) {
	if e.host != nil {
		e.host.ShareData(other.host)
		return
	}
	e.M.Shared = other.M.Shared
}

// DisableSharedData makes e a host without shared data; call it before
// Configure.
func (e *Env) DisableSharedData() {
	if e.host != nil {
		e.host.DisableSharedData()
		return
	}
	e.M.NoSharedData = true
}

// SetNow sets the clock of this host.
func (e *Env) SetNow(now time.Time) {
	e.M.NowNs = now.UnixNano()
	if e.host != nil {
		e.host.SetNow(now)
	}
}

// Configure runs the root lifecycle with config and reports its result.
func (e *Env) Configure(config string) bool {
	if e.host != nil {
		return e.host.LoadPlugin(e, config)
	}
	e.use()
	e.M.Buffers[abi.BufferPluginConfiguration] = []byte(config)
	e.M.Effective = e.Root
	e.G.ContextCreate(e.Root, 0)
	if !e.G.VMStart(e.Root, 0) {
		return false
	}
	return e.G.Configure(e.Root, uint32(len(config)))
}

// MustConfigure is Configure that fails the test on false.
func (e *Env) MustConfigure(config string) {
	e.T.Helper()
	if !e.Configure(config) {
		e.T.Fatalf("configure rejected: %v", e.Logs())
	}
}

// Now returns the mock host's clock.
func (e *Env) Now() time.Time { return time.Unix(0, e.M.NowNs) }

// Advance moves the clock of this host (and of the origin) forward.
func (e *Env) Advance(d time.Duration) {
	e.SetNow(e.Now().Add(d))
	if e.Origin != nil && e.Origin.Now.UnixNano() < e.M.NowNs {
		e.Origin.Now = time.Unix(0, e.M.NowNs)
	}
}

// Tick calls proxy_on_tick.
func (e *Env) Tick() {
	if e.host != nil {
		e.host.TickVMs()
		return
	}
	e.use()
	e.M.Effective = e.Root
	e.G.Tick(e.Root)
}

// Stream is one HTTP stream through the filter.
type Stream struct {
	ID         uint32
	Action     uint32 // of the request headers callback
	BodyAction uint32 // of the request body callback, when there was a body
	env        *Env
	hs         HostStream
	open       bool // the client has not ended the request yet
	// sent is the request as it left when the trailers callback let a held
	// request go (mock host only).
	sent []abi.Pair
}

// Request starts a stream: pseudo-headers from method and path, then kv
// (key, value, ...). With body == nil the headers end the stream, else the
// body does.
func (e *Env) Request(method, path string, body []byte, kv ...string) *Stream {
	return e.start(method, path, body, false, kv)
}

// OpenRequest starts a stream like Request whose request the client has
// not ended: neither the headers nor the body (when not nil) carry the end
// of the stream, and Stream.RequestTrailers ends it, as a gRPC client does
// (over HTTP/2 trailers may also follow the headers directly, with no body).
func (e *Env) OpenRequest(method, path string, body []byte, kv ...string) *Stream {
	return e.start(method, path, body, true, kv)
}

func (e *Env) start(method, path string, body []byte, open bool, kv []string) *Stream {
	e.next++
	id := e.next
	if e.host != nil {
		s := &Stream{ID: id, env: e, open: open, hs: e.host.Start(method, path, body, open, pairs(kv))}
		if s.hs.Paused() {
			s.Action = uint32(abi.ActionPause)
			if body != nil {
				s.BodyAction = s.Action
			}
		}
		return s
	}
	e.use()
	st := e.M.Stream(id)
	st.Request = []abi.Pair{{Key: ":method", Value: method}, {Key: ":path", Value: path}, {Key: ":authority", Value: "shop.example.com"}, {Key: ":scheme", Value: "https"}}
	for i := 0; i+1 < len(kv); i += 2 {
		st.Request = append(st.Request, abi.Pair{Key: strings.ToLower(kv[i]), Value: kv[i+1]})
	}
	e.M.Effective = e.Root
	e.G.ContextCreate(id, e.Root)
	e.M.Effective = id
	s := &Stream{ID: id, env: e, open: open}
	s.Action = e.G.RequestHeaders(id, uint32(len(st.Request)), body == nil && !open)
	if body != nil && e.M.Stream(id).Local == nil {
		e.M.Buffers[abi.BufferRequestBody] = body
		e.M.Effective = id
		s.BodyAction = e.G.RequestBody(id, uint32(len(body)), !open)
	}
	return s
}

// pairs turns key, value, ... into lower-cased pairs.
func pairs(kv []string) []abi.Pair {
	var ps []abi.Pair
	for i := 0; i+1 < len(kv); i += 2 {
		ps = append(ps, abi.Pair{Key: strings.ToLower(kv[i]), Value: kv[i+1]})
	}
	return ps
}

// Headers returns the request headers as the upstream would see them (in a
// Host, once the request reached the upstream).
func (s *Stream) Headers() []abi.Pair {
	if s.hs != nil {
		return s.hs.Forwarded()
	}
	if s.sent != nil {
		return s.sent
	}
	return s.env.M.Stream(s.ID).Request
}

// Header returns the first forwarded value of key.
func (s *Stream) Header(key string) string { return abi.Get(s.Headers(), key) }

// Local returns the local response, if the filter sent one.
func (s *Stream) Local() *abi.LocalResponse {
	if s.hs != nil {
		return s.hs.Local()
	}
	return s.env.M.Stream(s.ID).Local
}

// Continued reports whether the filter resumed the paused request.
func (s *Stream) Continued() bool {
	if s.hs != nil {
		return s.Action == uint32(abi.ActionPause) && s.hs.Forwarded() != nil
	}
	if s.sent != nil {
		return true
	}
	for _, st := range s.env.M.Stream(s.ID).Continued {
		if st == abi.StreamRequest {
			return true
		}
	}
	return false
}

// Forwarded reports whether the request goes upstream: it was not answered
// locally and either continued at once or was resumed.
func (s *Stream) Forwarded() bool {
	return s.Local() == nil && (s.Action == uint32(abi.ActionContinue) || s.Continued())
}

// Respond runs the response headers callback with kv as the upstream's
// headers (":status" first) and returns what the client gets. An open
// request ends first, without trailers: the body callback sees the end of
// the stream with no more data.
func (s *Stream) Respond(kv ...string) []abi.Pair {
	open := s.open
	s.open = false
	if s.hs != nil {
		return s.hs.Respond(pairs(kv))
	}
	e := s.env
	e.use()
	st := e.M.Stream(s.ID)
	if open && st.Local == nil {
		e.M.Buffers[abi.BufferRequestBody] = nil
		e.M.Effective = s.ID
		e.G.RequestBody(s.ID, 0, true)
	}
	st.Response = []abi.Pair{{Key: ":status", Value: "200"}}
	for i := 0; i+1 < len(kv); i += 2 {
		st.Response = append(st.Response, abi.Pair{Key: strings.ToLower(kv[i]), Value: kv[i+1]})
	}
	e.M.Effective = s.ID
	e.G.ResponseHeaders(s.ID, uint32(len(st.Response)), true)
	return st.Response
}

// RequestTrailers ends an open request (OpenRequest) with kv as the
// client's trailers, running the request trailers callback, and returns
// the trailers the upstream gets (Trailers).
func (s *Stream) RequestTrailers(kv ...string) []abi.Pair {
	e := s.env
	e.T.Helper()
	if !s.open {
		e.T.Fatal("RequestTrailers on a request the client already ended: trailers need OpenRequest")
	}
	s.open = false
	if s.hs != nil {
		s.hs.RequestTrailers(pairs(kv))
		return s.Trailers()
	}
	e.use()
	st := e.M.Stream(s.ID)
	held := (s.Action == uint32(abi.ActionPause) || s.BodyAction == uint32(abi.ActionPause)) && !s.Continued() && st.Local == nil
	st.RequestTrailers = pairs(kv)
	e.M.Effective = s.ID
	action := e.G.RequestTrailers(s.ID, uint32(len(st.RequestTrailers)))
	if held && action == uint32(abi.ActionContinue) && st.Local == nil {
		// The trailers end the stream: a proxy lets a request the filter
		// held go on when the trailers callback continues (Envoy and the
		// edge's Lifecycle do), with its headers as they are now.
		s.sent = append([]abi.Pair{}, st.Request...)
	}
	return s.Trailers()
}

// Trailers returns the request trailers as the upstream would see them (in
// a Host, once the upstream read the request to its end).
func (s *Stream) Trailers() []abi.Pair {
	if s.hs != nil {
		return s.hs.Trailers()
	}
	return s.env.M.Stream(s.ID).RequestTrailers
}

// SupportsResponseTrailers reports whether the host of e delivers response
// trailers (Stream.ResponseTrailers); the abi mock does.
func (e *Env) SupportsResponseTrailers() bool {
	return e.host == nil || e.host.SupportsResponseTrailers()
}

// ResponseTrailers runs the response trailers callback with kv as the
// upstream's trailers and returns what the client gets. Only on a host
// that SupportsResponseTrailers.
func (s *Stream) ResponseTrailers(kv ...string) []abi.Pair {
	e := s.env
	e.T.Helper()
	if !e.SupportsResponseTrailers() {
		e.T.Fatal("ResponseTrailers: this host does not deliver response trailers (check Env.SupportsResponseTrailers)")
	}
	if s.hs != nil {
		return s.hs.ResponseTrailers(pairs(kv))
	}
	e.use()
	st := e.M.Stream(s.ID)
	st.ResponseTrailers = pairs(kv)
	e.M.Effective = s.ID
	e.G.ResponseTrailers(s.ID, uint32(len(st.ResponseTrailers)))
	return st.ResponseTrailers
}

// Finish ends the stream: done, log, delete.
func (s *Stream) Finish() {
	if s.hs != nil {
		s.hs.Finish()
		return
	}
	e := s.env
	e.use()
	e.M.Effective = s.ID
	e.G.Done(s.ID)
	e.G.Log(s.ID)
	e.G.Delete(s.ID)
	delete(e.M.Streams, s.ID)
}

// Pending returns the HTTP calls not answered yet.
func (e *Env) Pending() []*abi.MockCall {
	if e.host != nil {
		return e.host.Pending()
	}
	return append([]*abi.MockCall(nil), e.M.Calls...)
}

// Reset forgets logs and finished state, so long fuzz runs stay fast.
func (e *Env) Reset() {
	e.M.Logs = e.M.Logs[:0]
	if e.Origin != nil {
		e.Origin.Requests = e.Origin.Requests[:0]
		e.Origin.Touches = e.Origin.Touches[:0]
	}
}

// Answer delivers a reply to call c; status 0 delivers a failed call (no
// headers), as a host does on reset or timeout.
func (e *Env) Answer(c *abi.MockCall, status int, body []byte, kv ...string) {
	if e.host != nil {
		e.host.Answer(c, status, body, pairs(kv))
		return
	}
	e.use()
	for i, p := range e.M.Calls {
		if p == c {
			e.M.Calls = append(e.M.Calls[:i], e.M.Calls[i+1:]...)
			break
		}
	}
	e.M.CallResponseHeaders = nil
	if status != 0 {
		e.M.CallResponseHeaders = []abi.Pair{{Key: ":status", Value: strconv.Itoa(status)}}
		for i := 0; i+1 < len(kv); i += 2 {
			e.M.CallResponseHeaders = append(e.M.CallResponseHeaders, abi.Pair{Key: strings.ToLower(kv[i]), Value: kv[i+1]})
		}
	}
	e.M.Buffers[abi.BufferHTTPCallResponseBody] = body
	e.M.Effective = e.Root
	e.G.HTTPCallResponse(e.Root, c.Token, uint32(len(e.M.CallResponseHeaders)), uint32(len(body)), 0)
}

// Serve answers every pending call with the fake origin and returns how
// many it answered.
func (e *Env) Serve() int {
	n := 0
	for {
		p := e.Pending()
		if len(p) == 0 {
			return n
		}
		for _, c := range p {
			status, body, hs := e.Origin.Reply(c)
			e.Answer(c, status, body, hs...)
			n++
		}
	}
}

// Metric returns the value of a guest metric on this host.
func (e *Env) Metric(name string) int64 {
	if e.host != nil {
		return e.host.Metric(name)
	}
	return e.M.Metrics.Get(name)
}

// Logged reports whether a log line contains all of parts.
func (e *Env) Logged(parts ...string) bool {
	for _, l := range e.Logs() {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l.Msg, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
