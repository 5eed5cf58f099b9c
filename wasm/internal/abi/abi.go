// Package abi binds the guest to the proxy-wasm ABI v0.2.1 host functions.
//
// Built for wasip1 (abi_wasip1.go) the functions call the `env` imports of the
// host; built for anything else (abi_mock.go) they call a Mock host, so the
// filter logic runs under ordinary `go test`. Both builds share this file:
// the types, the status codes and the header-map serialization.
//
// Byte slices returned by the getters (GetHeaderMapPairs, GetBufferBytes,
// GetSharedData, GetHeaderMapValue) are owned by this package and stay valid
// only until the next getter call: callers copy what they keep.
package abi

import (
	"encoding/binary"
	"errors"
)

// Status is a proxy-wasm status code returned by every host function.
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

// Err maps a status to an error; StatusOK is nil. It is the one place that
// turns host statuses into errors.
func (s Status) Err() error {
	switch s {
	case StatusOK:
		return nil
	case StatusNotFound:
		return ErrNotFound
	case StatusCASMismatch:
		return ErrCASMismatch
	}
	return &StatusError{Status: s}
}

// The errors that callers test for.
var (
	ErrNotFound    = errors.New("abi: not found")
	ErrCASMismatch = errors.New("abi: shared data CAS mismatch")
	ErrBadPairs    = errors.New("abi: malformed header map")
)

// StatusError is a host status other than OK, NOT_FOUND and CAS_MISMATCH.
type StatusError struct{ Status Status }

func (e *StatusError) Error() string { return "abi: host returned status " + utoa(uint32(e.Status)) }

// Action is what a stream callback tells the host to do next.
type Action uint32

// The actions.
const (
	ActionContinue Action = 0
	ActionPause    Action = 1
)

// LogLevel is the level of a log line.
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
	MapRequestHeaders          MapType = 0
	MapRequestTrailers         MapType = 1
	MapResponseHeaders         MapType = 2
	MapResponseTrailers        MapType = 3
	MapHTTPCallResponseHeaders MapType = 6
)

// BufferType selects a buffer.
type BufferType uint32

// The buffers.
const (
	BufferRequestBody          BufferType = 0
	BufferResponseBody         BufferType = 1
	BufferHTTPCallResponseBody BufferType = 4
	BufferVMConfiguration      BufferType = 6
	BufferPluginConfiguration  BufferType = 7
)

// StreamType selects the direction proxy_continue_stream resumes.
type StreamType uint32

// The stream types.
const (
	StreamRequest  StreamType = 0
	StreamResponse StreamType = 1
)

// Header-map serialization (the host core's layout):
//
//	+-------+--------+--------+-----+--------+--------+------+----+------+----+-----
//	| count | klen 0 | vlen 0 | ... | klen n | vlen n | key0 | \0 | val0 | \0 | ...
//	+-------+--------+--------+-----+--------+--------+------+----+------+----+-----
//	  u32 little-endian each; lengths exclude the NUL that ends every key and value.

// maxPairs is the host core's cap on the number of pairs in a map.
const maxPairs = 1024

// AppendPairs appends the serialization of kv (key, value, key, value, ...)
// to dst. It panics on an odd number of strings: that is a programmer bug.
func AppendPairs(dst []byte, kv ...string) []byte {
	if len(kv)%2 != 0 {
		panic("abi: AppendPairs needs key, value pairs")
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(kv)/2))
	for _, s := range kv {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	}
	for _, s := range kv {
		dst = append(append(dst, s...), 0)
	}
	return dst
}

// PairIter walks a serialized header map without allocating:
//
//	it := abi.NewPairIter(b)
//	for it.Next() { use(it.Key(), it.Value()) }
//	if it.Err() != nil { ... }
type PairIter struct {
	b          []byte
	n, i       int
	data       int // offset of the next key
	key, value []byte
	err        error
}

// NewPairIter returns an iterator over the serialized map b. A malformed map
// yields no pairs and Err returns ErrBadPairs.
func NewPairIter(b []byte) PairIter {
	it := PairIter{b: b}
	if len(b) < 4 {
		if len(b) != 0 {
			it.err = ErrBadPairs
		}
		return it
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxPairs || uint64(len(b)) < 4+8*uint64(n) {
		it.err = ErrBadPairs
		return it
	}
	it.n = int(n)
	it.data = 4 + 8*it.n
	return it
}

// Next advances to the next pair; it returns false at the end or on a
// malformed map.
func (it *PairIter) Next() bool {
	if it.err != nil || it.i >= it.n {
		if it.err == nil && it.i == it.n && it.data != len(it.b) && it.n > 0 {
			it.err = ErrBadPairs // the host core consumes the buffer exactly
		}
		return false
	}
	kl := uint64(binary.LittleEndian.Uint32(it.b[4+8*it.i:]))
	vl := uint64(binary.LittleEndian.Uint32(it.b[8+8*it.i:]))
	end := uint64(it.data) + kl + 1 + vl + 1
	if end > uint64(len(it.b)) || it.b[uint64(it.data)+kl] != 0 || it.b[end-1] != 0 {
		it.err = ErrBadPairs
		return false
	}
	k := it.data
	v := k + int(kl) + 1
	it.key = it.b[k : k+int(kl)]
	it.value = it.b[v : v+int(vl)]
	it.data = int(end)
	it.i++
	return true
}

// Key returns the current key; it aliases the map's bytes.
func (it *PairIter) Key() []byte { return it.key }

// Value returns the current value; it aliases the map's bytes.
func (it *PairIter) Value() []byte { return it.value }

// Err returns ErrBadPairs if the map was malformed.
func (it *PairIter) Err() error { return it.err }

func utoa(u uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	return string(b[i:])
}
