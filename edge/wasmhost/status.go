package wasmhost

import "errors"

// Status is a proxy-wasm ABI status code, the value every host function returns.
type Status uint32

// The status codes of ABI v0.2.1 that this host returns.
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

// Errors that correspond to proxy-wasm statuses; Status.Err maps one to the other.
var (
	ErrNotFound             = errors.New("wasmhost: not found")
	ErrBadArgument          = errors.New("wasmhost: bad argument")
	ErrSerializationFailure = errors.New("wasmhost: serialization failure")
	ErrParseFailure         = errors.New("wasmhost: parse failure")
	ErrInvalidMemoryAccess  = errors.New("wasmhost: invalid memory access")
	ErrEmpty                = errors.New("wasmhost: empty")
	ErrCASMismatch          = errors.New("wasmhost: cas mismatch")
	ErrInternalFailure      = errors.New("wasmhost: internal failure")
	ErrUnimplemented        = errors.New("wasmhost: unimplemented")
	ErrUnknownStatus        = errors.New("wasmhost: unknown status")
)

// Errors of the host runtime itself.
var (
	ErrNoWasm          = errors.New("wasmhost: no wasm module configured")
	ErrABIVersion      = errors.New("wasmhost: module exports no supported proxy_abi_version marker (0_2_0 or 0_2_1)")
	ErrNoAllocator     = errors.New("wasmhost: module exports neither proxy_on_memory_allocate nor malloc")
	ErrNoMemory        = errors.New("wasmhost: module exports no memory")
	ErrVMStartRejected = errors.New("wasmhost: plugin rejected proxy_on_vm_start")
	ErrConfigRejected  = errors.New("wasmhost: plugin rejected its configuration")
	ErrVMFailed        = errors.New("wasmhost: the VM serving this stream failed")
	ErrNoHealthyVM     = errors.New("wasmhost: no healthy VM")
	ErrClosed          = errors.New("wasmhost: host closed")
	ErrPauseTimeout    = errors.New("wasmhost: paused stream timed out")
	ErrStreamDone      = errors.New("wasmhost: stream already answered or closed")
	ErrHeaderMapLimit  = errors.New("wasmhost: header map exceeds 1024 pairs or 1 MiB")
	ErrHeaderMapFormat = errors.New("wasmhost: malformed serialized header map")
)

var statusErrors = [...]error{
	StatusOK:                   nil,
	StatusNotFound:             ErrNotFound,
	StatusBadArgument:          ErrBadArgument,
	StatusSerializationFailure: ErrSerializationFailure,
	StatusParseFailure:         ErrParseFailure,
	5:                          ErrUnknownStatus,
	StatusInvalidMemoryAccess:  ErrInvalidMemoryAccess,
	StatusEmpty:                ErrEmpty,
	StatusCASMismatch:          ErrCASMismatch,
	9:                          ErrUnknownStatus,
	StatusInternalFailure:      ErrInternalFailure,
	11:                         ErrUnknownStatus,
	StatusUnimplemented:        ErrUnimplemented,
}

// Err returns the error for s, nil for StatusOK. This is the one place that maps
// proxy-wasm statuses to Go errors.
func (s Status) Err() error {
	if int(s) < len(statusErrors) {
		return statusErrors[s]
	}
	return ErrUnknownStatus
}

// String returns the ABI name of s.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusNotFound:
		return "NOT_FOUND"
	case StatusBadArgument:
		return "BAD_ARGUMENT"
	case StatusSerializationFailure:
		return "SERIALIZATION_FAILURE"
	case StatusParseFailure:
		return "PARSE_FAILURE"
	case StatusInvalidMemoryAccess:
		return "INVALID_MEMORY_ACCESS"
	case StatusEmpty:
		return "EMPTY"
	case StatusCASMismatch:
		return "CAS_MISMATCH"
	case StatusInternalFailure:
		return "INTERNAL_FAILURE"
	case StatusUnimplemented:
		return "UNIMPLEMENTED"
	}
	return "UNKNOWN"
}
