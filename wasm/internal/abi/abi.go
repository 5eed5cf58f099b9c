// Package abi binds the guest to the proxy-wasm ABI v0.2.1 host functions.
//
// Built for wasip1 (abi_wasip1.go) the functions call the `env` imports of the
// host; built for anything else (abi_mock.go) they call a Mock host, so the
// filter logic runs under ordinary `go test`. Both builds share this file:
// the names of the ABI's numbers and the header-map serialization, both
// taken from package proxywasm.
//
// Byte slices returned by the getters (GetHeaderMapPairs, GetBufferBytes,
// GetSharedData, GetHeaderMapValue) are owned by this package and stay valid
// only until the next getter call: callers copy what they keep.
package abi

import "github.com/sessionedge/sessionedge/proxywasm"

// The ABI's numbers and the header-map encoding are package proxywasm's,
// shared with the host; these names keep the filter's vocabulary.
type (
	// Status is a proxy-wasm status code returned by every host function;
	// its Err method gives nil for StatusOK and the status as an error
	// otherwise.
	Status = proxywasm.Status
	// Action is what a stream callback tells the host to do next.
	Action = proxywasm.Action
	// LogLevel is the level of a log line.
	LogLevel = proxywasm.LogLevel
	// MapType selects a header map.
	MapType = proxywasm.MapType
	// BufferType selects a buffer.
	BufferType = proxywasm.BufferType
	// StreamType selects the direction proxy_continue_stream resumes.
	StreamType = proxywasm.StreamType
	// PairIter walks a serialized header map without allocating.
	PairIter = proxywasm.PairIter
)

// The status codes of ABI v0.2.1.
const (
	StatusOK                  = proxywasm.StatusOK
	StatusNotFound            = proxywasm.StatusNotFound
	StatusBadArgument         = proxywasm.StatusBadArgument
	StatusInvalidMemoryAccess = proxywasm.StatusInvalidMemoryAccess
	StatusCASMismatch         = proxywasm.StatusCASMismatch
	StatusInternalFailure     = proxywasm.StatusInternalFailure
	StatusUnimplemented       = proxywasm.StatusUnimplemented
)

// The actions.
const (
	ActionContinue = proxywasm.ActionContinue
	ActionPause    = proxywasm.ActionPause
)

// The log levels.
const (
	LogTrace    = proxywasm.LogTrace
	LogDebug    = proxywasm.LogDebug
	LogInfo     = proxywasm.LogInfo
	LogWarn     = proxywasm.LogWarn
	LogError    = proxywasm.LogError
	LogCritical = proxywasm.LogCritical
)

// The header maps.
const (
	MapRequestHeaders          = proxywasm.MapRequestHeaders
	MapRequestTrailers         = proxywasm.MapRequestTrailers
	MapResponseHeaders         = proxywasm.MapResponseHeaders
	MapResponseTrailers        = proxywasm.MapResponseTrailers
	MapHTTPCallResponseHeaders = proxywasm.MapHTTPCallResponseHeaders
)

// The buffers.
const (
	BufferRequestBody          = proxywasm.BufferRequestBody
	BufferResponseBody         = proxywasm.BufferResponseBody
	BufferHTTPCallResponseBody = proxywasm.BufferHTTPCallResponseBody
	BufferVMConfiguration      = proxywasm.BufferVMConfiguration
	BufferPluginConfiguration  = proxywasm.BufferPluginConfiguration
)

// The stream types.
const (
	StreamRequest  = proxywasm.StreamRequest
	StreamResponse = proxywasm.StreamResponse
)

// AppendPairs appends the serialization of kv (key, value, key, value, ...)
// to dst. It panics on an odd number of strings: that is a programmer bug.
func AppendPairs(dst []byte, kv ...string) []byte { return proxywasm.AppendPairs(dst, kv...) }

// NewPairIter returns an iterator over the serialized map b:
//
//	it := abi.NewPairIter(b)
//	for it.Next() { use(it.Key(), it.Value()) }
//	if it.Err() != nil { ... }
//
// A malformed map yields the pairs before the fault, then Err returns
// proxywasm.ErrMapFormat or ErrMapLimit.
func NewPairIter(b []byte) PairIter { return proxywasm.NewPairIter(b) }
