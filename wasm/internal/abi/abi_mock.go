//go:build !wasip1

package abi

import (
	"strings"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// Mock is an in-process stand-in for a proxy-wasm host, used when the guest
// is built natively (tests, fuzzing, benchmarks). It mirrors the host core's
// behaviour where the filter depends on it: header keys are lower-cased,
// repeated headers are kept, get_header_map_value returns the first value,
// the effective context selects the maps, shared data has CAS semantics.
//
// A Mock is not safe for concurrent use; install one with Use.
type Mock struct {
	NowNs     int64
	TickMs    uint32
	Logs      []LogLine
	Effective uint32
	Streams   map[uint32]*MockStream
	Calls     []*MockCall
	Shared    *SharedStore
	Metrics   *MetricStore
	nextToken uint32

	// Buffers answered by GetBufferBytes, by type.
	Buffers map[BufferType][]byte
	// CallResponseHeaders is the map answered for MapHTTPCallResponseHeaders.
	CallResponseHeaders []Pair
	// RawRequestPairs, when set, is returned as the serialized request
	// header map instead of the effective stream's, so fuzzing can feed the
	// guest malformed maps.
	RawRequestPairs []byte
	// Discard makes header writes (add, replace, remove) succeed without
	// changing the maps, so benchmarks can replay one request and measure
	// the guest, not the mock.
	Discard bool
	// SetPairsCalls counts proxy_set_header_map_pairs calls.
	SetPairsCalls int
	// NoSharedData makes the shared-data functions answer UNIMPLEMENTED,
	// like a host without them.
	NoSharedData bool
	// Properties answer GetProperty for every stream (a stream's own
	// MockStream.Properties come first), by NUL-joined path. NewMock sets
	// source.address to "192.0.2.1:54321", as the edge host's harness does.
	Properties map[string]string
	// PropertyCalls counts GetProperty calls.
	PropertyCalls int

	out []byte // reused serialization buffer for getters
}

// LogLine is one logged message.
type LogLine struct {
	Level LogLevel
	Msg   string
}

// Pair is one header.
type Pair struct{ Key, Value string }

// MockStream is the host-side state of one HTTP stream.
type MockStream struct {
	Request, Response []Pair
	// Trailers, when the stream has them.
	RequestTrailers, ResponseTrailers []Pair
	Continued                         []StreamType
	Local                             *LocalResponse
	// Properties of this stream (GetProperty), by NUL-joined path.
	Properties map[string]string
}

// LocalResponse records proxy_send_local_response.
type LocalResponse struct {
	Status  uint32
	Details string
	Body    []byte
	Headers []Pair
}

// MockCall records one proxy_http_call.
type MockCall struct {
	Token    uint32
	Upstream string
	Headers  []Pair
	Body     []byte
	Timeout  uint32
	Context  uint32 // the effective context when the call was made
}

// Header returns the first value of key in the call's headers.
func (c *MockCall) Header(key string) string { return first(c.Headers, key) }

// SharedStore is the map shared by every VM of a plugin; give several Mocks
// the same store to model Envoy's one-VM-per-worker deployment.
type SharedStore struct {
	Entries map[string]*SharedEntry
	cas     uint32
}

// NewSharedStore returns an empty shared map.
func NewSharedStore() *SharedStore { return &SharedStore{Entries: map[string]*SharedEntry{}} }

// SharedEntry is one value of the VM-shared map.
type SharedEntry struct {
	Value []byte
	CAS   uint32
}

// NewMock returns an empty mock host.
func NewMock() *Mock {
	return &Mock{
		Streams: map[uint32]*MockStream{},
		Shared:  NewSharedStore(),
		Metrics: NewMetricStore(),
		Buffers: map[BufferType][]byte{},
		NowNs:   1_700_000_000_000_000_000,

		Properties: map[string]string{"source\x00address": "192.0.2.1:54321"},
	}
}

var host *Mock

// Use installs m as the host the package functions talk to.
func Use(m *Mock) { host = m }

// Stream returns the stream state of context id, creating it.
func (m *Mock) Stream(id uint32) *MockStream {
	s := m.Streams[id]
	if s == nil {
		s = &MockStream{}
		m.Streams[id] = s
	}
	return s
}

func first(ps []Pair, key string) string {
	for _, p := range ps {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// Get returns the first value of key in ps.
func Get(ps []Pair, key string) string { return first(ps, key) }

// All returns every value of key in ps.
func All(ps []Pair, key string) []string {
	var out []string
	for _, p := range ps {
		if p.Key == key {
			out = append(out, p.Value)
		}
	}
	return out
}

// ParsePairs decodes a serialized map into pairs.
func ParsePairs(b []byte) ([]Pair, error) {
	var out []Pair
	it := NewPairIter(b)
	for it.Next() {
		out = append(out, Pair{string(it.Key()), string(it.Value())})
	}
	return out, it.Err()
}

func (m *Mock) headerMap(mt MapType) *[]Pair {
	switch mt {
	case MapRequestHeaders:
		return &m.Stream(m.Effective).Request
	case MapResponseHeaders:
		return &m.Stream(m.Effective).Response
	case MapRequestTrailers:
		return &m.Stream(m.Effective).RequestTrailers
	case MapResponseTrailers:
		return &m.Stream(m.Effective).ResponseTrailers
	case MapHTTPCallResponseHeaders:
		return &m.CallResponseHeaders
	}
	return nil
}

func (m *Mock) serialize(ps []Pair) []byte {
	m.out = proxywasm.AppendPairsFunc(m.out[:0], len(ps), func(i int) (string, string) { return ps[i].Key, ps[i].Value })
	return m.out
}

// Log writes a log line at level.
func Log(level LogLevel, msg string) { host.Logs = append(host.Logs, LogLine{level, msg}) }

// NowNanos returns the mock clock in Unix nanoseconds.
func NowNanos() int64 { return host.NowNs }

// SetTickPeriod records the tick period.
func SetTickPeriod(ms uint32) Status {
	host.TickMs = ms
	return StatusOK
}

// GetBufferBytes returns up to max bytes of buffer bt from start.
func GetBufferBytes(bt BufferType, start, max uint32) ([]byte, Status) {
	b, ok := host.Buffers[bt]
	if !ok {
		return nil, StatusNotFound
	}
	if start > uint32(len(b)) {
		return nil, StatusBadArgument
	}
	b = b[start:]
	if uint32(len(b)) > max {
		b = b[:max]
	}
	host.out = append(host.out[:0], b...)
	return host.out, StatusOK
}

// GetHeaderMapPairs returns the serialized header map mt.
func GetHeaderMapPairs(mt MapType) ([]byte, Status) {
	if mt == MapRequestHeaders && host.RawRequestPairs != nil {
		return host.RawRequestPairs, StatusOK
	}
	hm := host.headerMap(mt)
	if hm == nil {
		return nil, StatusBadArgument
	}
	return host.serialize(*hm), StatusOK
}

// GetHeaderMapValue returns the first value of header key in map mt.
func GetHeaderMapValue(mt MapType, key string) ([]byte, Status) {
	hm := host.headerMap(mt)
	if hm == nil {
		return nil, StatusBadArgument
	}
	key = strings.ToLower(key)
	for _, p := range *hm {
		if p.Key == key {
			host.out = append(host.out[:0], p.Value...)
			return host.out, StatusOK
		}
	}
	return nil, StatusNotFound
}

// SetHeaderMapPairs replaces map mt with the serialized pairs.
func SetHeaderMapPairs(mt MapType, pairs []byte) Status {
	if host.Discard {
		return StatusOK
	}
	hm := host.headerMap(mt)
	if hm == nil {
		return StatusBadArgument
	}
	ps, err := ParsePairs(pairs)
	if err != nil {
		return StatusBadArgument
	}
	host.SetPairsCalls++
	*hm = ps
	return StatusOK
}

// AddHeader adds a value to header key of map mt.
func AddHeader(mt MapType, key string, value []byte) Status {
	if host.Discard {
		return StatusOK
	}
	hm := host.headerMap(mt)
	if hm == nil {
		return StatusBadArgument
	}
	*hm = append(*hm, Pair{strings.ToLower(key), string(value)})
	return StatusOK
}

// ReplaceHeader sets header key of map mt to value alone.
func ReplaceHeader(mt MapType, key string, value []byte) Status {
	if host.Discard {
		return StatusOK
	}
	hm := host.headerMap(mt)
	if hm == nil {
		return StatusBadArgument
	}
	removeKey(hm, strings.ToLower(key))
	*hm = append(*hm, Pair{strings.ToLower(key), string(value)})
	return StatusOK
}

// RemoveHeader removes every value of header key from map mt.
func RemoveHeader(mt MapType, key []byte) Status {
	if host.Discard {
		return StatusOK
	}
	hm := host.headerMap(mt)
	if hm == nil {
		return StatusBadArgument
	}
	removeKey(hm, strings.ToLower(string(key)))
	return StatusOK
}

func removeKey(hm *[]Pair, key string) {
	out := (*hm)[:0]
	for _, p := range *hm {
		if p.Key != key {
			out = append(out, p)
		}
	}
	*hm = out
}

// ContinueStream records that the effective stream was resumed.
func ContinueStream(st StreamType) Status {
	s := host.Stream(host.Effective)
	s.Continued = append(s.Continued, st)
	return StatusOK
}

// SendLocalResponse records a local response on the effective stream.
func SendLocalResponse(status uint32, details string, body []byte, headers []byte) Status {
	hs, err := ParsePairs(headers)
	if err != nil {
		return StatusBadArgument
	}
	host.Stream(host.Effective).Local = &LocalResponse{Status: status, Details: details, Body: append([]byte(nil), body...), Headers: hs}
	return StatusOK
}

// HTTPCall records an outgoing call and returns its token. Like the host
// core it requires :method, :path and :authority.
func HTTPCall(upstream string, headers, body []byte, timeoutMs uint32) (uint32, Status) {
	hs, err := ParsePairs(headers)
	if err != nil {
		return 0, StatusBadArgument
	}
	if first(hs, ":method") == "" || first(hs, ":path") == "" || first(hs, ":authority") == "" {
		return 0, StatusBadArgument
	}
	host.nextToken++
	host.Calls = append(host.Calls, &MockCall{Token: host.nextToken, Upstream: upstream, Headers: hs,
		Body: append([]byte(nil), body...), Timeout: timeoutMs, Context: host.Effective})
	return host.nextToken, StatusOK
}

// SetEffectiveContext makes following calls act on context id.
func SetEffectiveContext(id uint32) Status {
	host.Effective = id
	return StatusOK
}

// GetSharedData returns the value of key and its CAS.
func GetSharedData(key string) ([]byte, uint32, Status) {
	if host.NoSharedData {
		return nil, 0, StatusUnimplemented
	}
	e := host.Shared.Entries[key]
	if e == nil {
		return nil, 0, StatusNotFound
	}
	host.out = append(host.out[:0], e.Value...)
	return host.out, e.CAS, StatusOK
}

// SetSharedData sets key to value if its CAS equals cas (0: always; an
// absent key ignores cas, as in the host core).
func SetSharedData(key string, value []byte, cas uint32) Status {
	if host.NoSharedData {
		return StatusUnimplemented
	}
	sh := host.Shared
	e := sh.Entries[key]
	if e != nil && cas != 0 && e.CAS != cas {
		return StatusCASMismatch
	}
	sh.cas++
	if sh.cas == 0 {
		sh.cas++
	}
	sh.Entries[key] = &SharedEntry{Value: append([]byte(nil), value...), CAS: sh.cas}
	return StatusOK
}

// GetProperty returns property path of the effective stream.
func GetProperty(path string) ([]byte, Status) {
	host.PropertyCalls++
	if s := host.Streams[host.Effective]; s != nil {
		if v, ok := s.Properties[path]; ok {
			host.out = append(host.out[:0], v...)
			return host.out, StatusOK
		}
	}
	if v, ok := host.Properties[path]; ok {
		host.out = append(host.out[:0], v...)
		return host.out, StatusOK
	}
	return nil, StatusNotFound
}
