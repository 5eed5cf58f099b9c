// Package proxywasm holds what a proxy-wasm host and a guest share of ABI
// v0.2.1: the status codes, actions, log levels, the numbers of the header
// maps, buffers, stream and metric types, and the encoding of header maps.
//
// It imports only the standard library, so a guest built for wasip1 (or with
// TinyGo) may use it as well as a host.
package proxywasm

// Status is the value every host function returns.
type Status uint32

// The status codes of ABI v0.2.1.
const (
	StatusOK                   Status = 0
	StatusNotFound             Status = 1
	StatusBadArgument          Status = 2
	StatusSerializationFailure Status = 3
	StatusParseFailure         Status = 4
	StatusInvalidMemoryAccess  Status = 6
	StatusEmpty                Status = 7
	StatusCASMismatch          Status = 8
	StatusInternalFailure      Status = 10
	StatusUnimplemented        Status = 12
)

var statusNames = [...]string{
	StatusOK:                   "OK",
	StatusNotFound:             "NOT_FOUND",
	StatusBadArgument:          "BAD_ARGUMENT",
	StatusSerializationFailure: "SERIALIZATION_FAILURE",
	StatusParseFailure:         "PARSE_FAILURE",
	StatusInvalidMemoryAccess:  "INVALID_MEMORY_ACCESS",
	StatusEmpty:                "EMPTY",
	StatusCASMismatch:          "CAS_MISMATCH",
	StatusInternalFailure:      "INTERNAL_FAILURE",
	StatusUnimplemented:        "UNIMPLEMENTED",
}

// String returns the ABI name of s ("NOT_FOUND"), or "UNKNOWN".
func (s Status) String() string {
	if int(s) < len(statusNames) && statusNames[s] != "" {
		return statusNames[s]
	}
	return "UNKNOWN"
}

// Error makes a status usable as an error: "proxy-wasm status NOT_FOUND".
func (s Status) Error() string { return "proxy-wasm status " + s.String() }

// Err returns nil for StatusOK and s itself otherwise, so callers compare
// with errors.Is(err, proxywasm.StatusNotFound).
func (s Status) Err() error {
	if s == StatusOK {
		return nil
	}
	return s
}

// Action is what a stream callback tells the host to do next.
type Action uint32

// The actions.
const (
	ActionContinue Action = 0
	ActionPause    Action = 1
)

// LogLevel is the level of proxy_log and proxy_get_log_level.
type LogLevel uint32

// The log levels.
const (
	LogTrace    LogLevel = 0
	LogDebug    LogLevel = 1
	LogInfo     LogLevel = 2
	LogWarn     LogLevel = 3
	LogError    LogLevel = 4
	LogCritical LogLevel = 5
)

// MapType selects a header map.
type MapType uint32

// The header maps.
const (
	MapRequestHeaders           MapType = 0
	MapRequestTrailers          MapType = 1
	MapResponseHeaders          MapType = 2
	MapResponseTrailers         MapType = 3
	MapGRPCInitialMetadata      MapType = 4
	MapGRPCTrailingMetadata     MapType = 5
	MapHTTPCallResponseHeaders  MapType = 6
	MapHTTPCallResponseTrailers MapType = 7
)

// BufferType selects a buffer.
type BufferType uint32

// The buffers.
const (
	BufferRequestBody          BufferType = 0
	BufferResponseBody         BufferType = 1
	BufferDownstreamData       BufferType = 2
	BufferUpstreamData         BufferType = 3
	BufferHTTPCallResponseBody BufferType = 4
	BufferGRPCMessage          BufferType = 5
	BufferVMConfiguration      BufferType = 6
	BufferPluginConfiguration  BufferType = 7
	BufferForeignFunctionArgs  BufferType = 8
)

// StreamType selects what proxy_continue_stream and proxy_close_stream act on.
type StreamType uint32

// The stream types.
const (
	StreamRequest    StreamType = 0
	StreamResponse   StreamType = 1
	StreamDownstream StreamType = 2
	StreamUpstream   StreamType = 3
)

// MetricType is the type argument of proxy_define_metric.
type MetricType uint32

// The metric types.
const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)
