//go:build wasip1

package abi

import "unsafe"

// The host functions of ABI v0.2.1. Every parameter is a 32-bit integer or a
// pointer (a 32-bit offset into guest memory), because Go's int is 64 bits on
// GOARCH=wasm and 32 bits in TinyGo.

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxyGetCurrentTimeNanoseconds(ret unsafe.Pointer) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriodMilliseconds(period uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bt uint32, start uint32, max uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(mt uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(mt uint32, key unsafe.Pointer, keySize uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_set_header_map_pairs
func proxySetHeaderMapPairs(mt uint32, data unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(mt uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(mt uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(mt uint32, key unsafe.Pointer, keySize uint32) uint32

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(st uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details unsafe.Pointer, detailsSize uint32, body unsafe.Pointer, bodySize uint32,
	headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32

//go:wasmimport env proxy_http_call
func proxyHTTPCall(upstream unsafe.Pointer, upstreamSize uint32, headers unsafe.Pointer, headersSize uint32,
	body unsafe.Pointer, bodySize uint32, trailers unsafe.Pointer, trailersSize uint32, timeout uint32, retToken unsafe.Pointer) uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(id uint32) uint32

//go:wasmimport env proxy_get_shared_data
func proxyGetSharedData(key unsafe.Pointer, keySize uint32, retValue unsafe.Pointer, retSize unsafe.Pointer, retCAS unsafe.Pointer) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path unsafe.Pointer, pathSize uint32, retPtr unsafe.Pointer, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetSharedData(key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32, cas uint32) uint32

// Host memory handed to the guest: the host calls proxy_on_memory_allocate
// (Allocate) during a getter import and writes into the buffer; the getter
// then takes the buffer back (take). The first allocation of an import gets
// getBuf, one buffer reused by every getter (grown to the largest answer up
// to maxReuse), which is why getter results are valid only until the next
// getter call; a further allocation within the same import, or a larger
// one, gets a buffer of its own, kept in pending until taken so the garbage
// collector keeps it.
// The out-parameters of imports live in package variables: a pointer to a
// local passed to a wasmimport function escapes, so locals would cost a heap
// allocation per call. The guest is single-threaded, so sharing them is safe.
var (
	retPtr   unsafe.Pointer
	retSize  uint32
	retCAS   uint32
	retTime  int64
	retToken uint32
)

// maxReuse bounds the reused getter buffer.
const maxReuse = 64 << 10

var (
	getBuf  []byte
	getBusy bool // getBuf was handed out in the current import
	pending [4][]byte
	npend   int
	zero    [1]byte
)

// Allocate is proxy_on_memory_allocate: it returns a buffer of size bytes
// that stays alive until a getter takes it. Size 0 gets a valid non-null
// pointer to an empty buffer.
func Allocate(size uint32) unsafe.Pointer {
	if size == 0 {
		return unsafe.Pointer(&zero[0])
	}
	if !getBusy && size <= maxReuse {
		if uint32(cap(getBuf)) < size {
			getBuf = make([]byte, min(max(size, 2*uint32(cap(getBuf)), 1024), maxReuse))
		}
		getBusy = true
		return unsafe.Pointer(unsafe.SliceData(getBuf))
	}
	b := make([]byte, size)
	if npend == len(pending) {
		// A host never allocates this many times within one import; drop
		// the oldest rather than grow without bound.
		copy(pending[:], pending[1:])
		npend--
	}
	pending[npend] = b
	npend++
	return unsafe.Pointer(&b[0])
}

// beginGet starts a getter import: getBuf may be handed out again.
func beginGet() { getBusy = false }

// take returns the buffer at ptr, size bytes long, that the host filled.
func take(ptr unsafe.Pointer, size uint32) []byte {
	busy := getBusy
	getBusy = false
	if size == 0 {
		npend = 0
		return nil
	}
	if busy && ptr == unsafe.Pointer(unsafe.SliceData(getBuf)) && uint32(cap(getBuf)) >= size {
		if npend > 0 {
			clear(pending[:npend])
			npend = 0
		}
		return getBuf[:size]
	}
	for i := 0; i < npend; i++ {
		b := pending[i]
		if unsafe.Pointer(&b[0]) == ptr && uint32(len(b)) >= size {
			clear(pending[:npend])
			npend = 0
			return b[:size]
		}
	}
	// The host placed the data elsewhere in our memory (some hosts reuse a
	// prior allocation); copy it so later allocations cannot alias it.
	npend = 0
	b := make([]byte, size)
	copy(b, unsafe.Slice((*byte)(ptr), size))
	return b
}

func strPtr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return unsafe.Pointer(&zero[0])
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return unsafe.Pointer(&zero[0])
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// Log writes a log line at level.
func Log(level LogLevel, msg string) {
	proxyLog(uint32(level), strPtr(msg), uint32(len(msg)))
}

// NowNanos returns the host's wall clock in Unix nanoseconds.
func NowNanos() int64 {
	proxyGetCurrentTimeNanoseconds(unsafe.Pointer(&retTime))
	return retTime
}

// SetTickPeriod asks the host to call proxy_on_tick every ms milliseconds.
func SetTickPeriod(ms uint32) Status { return Status(proxySetTickPeriodMilliseconds(ms)) }

// GetBufferBytes returns up to max bytes of buffer bt from start.
func GetBufferBytes(bt BufferType, start, max uint32) ([]byte, Status) {
	beginGet()
	retPtr, retSize = nil, 0
	st := Status(proxyGetBufferBytes(uint32(bt), start, max, unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize)))
	if st != StatusOK {
		npend = 0
		return nil, st
	}
	return take(retPtr, retSize), st
}

// GetHeaderMapPairs returns the serialized header map mt (see PairIter).
func GetHeaderMapPairs(mt MapType) ([]byte, Status) {
	beginGet()
	retPtr, retSize = nil, 0
	st := Status(proxyGetHeaderMapPairs(uint32(mt), unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize)))
	if st != StatusOK {
		npend = 0
		return nil, st
	}
	return take(retPtr, retSize), st
}

// GetHeaderMapValue returns the first value of header key in map mt.
func GetHeaderMapValue(mt MapType, key string) ([]byte, Status) {
	beginGet()
	retPtr, retSize = nil, 0
	st := Status(proxyGetHeaderMapValue(uint32(mt), strPtr(key), uint32(len(key)), unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize)))
	if st != StatusOK {
		npend = 0
		return nil, st
	}
	return take(retPtr, retSize), st
}

// SetHeaderMapPairs replaces map mt with the serialized map pairs (see
// AppendPairs): one host call instead of one per header.
func SetHeaderMapPairs(mt MapType, pairs []byte) Status {
	return Status(proxySetHeaderMapPairs(uint32(mt), bytesPtr(pairs), uint32(len(pairs))))
}

// AddHeader adds a value to header key of map mt, keeping existing values.
func AddHeader(mt MapType, key string, value []byte) Status {
	return Status(proxyAddHeaderMapValue(uint32(mt), strPtr(key), uint32(len(key)), bytesPtr(value), uint32(len(value))))
}

// ReplaceHeader sets header key of map mt to value alone.
func ReplaceHeader(mt MapType, key string, value []byte) Status {
	return Status(proxyReplaceHeaderMapValue(uint32(mt), strPtr(key), uint32(len(key)), bytesPtr(value), uint32(len(value))))
}

// RemoveHeader removes every value of header key from map mt.
func RemoveHeader(mt MapType, key []byte) Status {
	return Status(proxyRemoveHeaderMapValue(uint32(mt), bytesPtr(key), uint32(len(key))))
}

// ContinueStream resumes a paused stream of the effective context.
func ContinueStream(st StreamType) Status { return Status(proxyContinueStream(uint32(st))) }

// SendLocalResponse answers the effective context's stream without the
// upstream; headers is a serialized map (AppendPairs).
func SendLocalResponse(status uint32, details string, body []byte, headers []byte) Status {
	return Status(proxySendLocalResponse(status, strPtr(details), uint32(len(details)), bytesPtr(body), uint32(len(body)),
		bytesPtr(headers), uint32(len(headers)), -1))
}

// HTTPCall sends a request to cluster upstream; headers is a serialized map
// holding at least :method, :path and :authority. The answer arrives as
// proxy_on_http_call_response on the root context with the returned token.
func HTTPCall(upstream string, headers, body []byte, timeoutMs uint32) (uint32, Status) {
	retToken = 0
	st := Status(proxyHTTPCall(strPtr(upstream), uint32(len(upstream)), bytesPtr(headers), uint32(len(headers)),
		bytesPtr(body), uint32(len(body)), unsafe.Pointer(&zero[0]), 0, timeoutMs, unsafe.Pointer(&retToken)))
	return retToken, st
}

// SetEffectiveContext makes the following calls act on context id.
func SetEffectiveContext(id uint32) Status { return Status(proxySetEffectiveContext(id)) }

// GetSharedData returns the value of key in the VM-shared map and its CAS.
func GetSharedData(key string) ([]byte, uint32, Status) {
	beginGet()
	retPtr, retSize, retCAS = nil, 0, 0
	st := Status(proxyGetSharedData(strPtr(key), uint32(len(key)), unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize), unsafe.Pointer(&retCAS)))
	if st != StatusOK {
		npend = 0
		return nil, 0, st
	}
	return take(retPtr, retSize), retCAS, st
}

// SetSharedData sets key to value if its CAS still equals cas (0: always).
func SetSharedData(key string, value []byte, cas uint32) Status {
	return Status(proxySetSharedData(strPtr(key), uint32(len(key)), bytesPtr(value), uint32(len(value)), cas))
}

// GetProperty returns the value of a host property of the effective
// context; path is its segments joined by NUL ("source\x00address").
func GetProperty(path string) ([]byte, Status) {
	beginGet()
	retPtr, retSize = nil, 0
	st := Status(proxyGetProperty(strPtr(path), uint32(len(path)), unsafe.Pointer(&retPtr), unsafe.Pointer(&retSize)))
	if st != StatusOK {
		npend = 0
		return nil, st
	}
	return take(retPtr, retSize), st
}
