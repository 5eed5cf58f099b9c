package wasmhost

import "errors"

// Errors of New: a module this host cannot run, or a plugin that refused
// to start. The statuses host functions return, and the errors of
// header-map decoding, are those of package proxywasm.
var (
	ErrNoWasm      = errors.New("wasmhost: no wasm module configured")
	ErrABIVersion  = errors.New("wasmhost: module exports no supported proxy_abi_version marker (0_2_0 or 0_2_1)")
	ErrNoAllocator = errors.New("wasmhost: module exports neither proxy_on_memory_allocate nor malloc")
	ErrNoMemory    = errors.New("wasmhost: module exports no memory")
)

// Errors of a plugin that refused its root lifecycle.
var (
	ErrVMStartRejected = errors.New("wasmhost: plugin rejected proxy_on_vm_start")
	ErrConfigRejected  = errors.New("wasmhost: plugin rejected its configuration")
)

// Errors of NewStream.
var (
	ErrNoHealthyVM = errors.New("wasmhost: no healthy VM")
	ErrClosed      = errors.New("wasmhost: host closed")
)

// Errors of the callbacks of a stream.
var (
	ErrVMFailed     = errors.New("wasmhost: the VM serving this stream failed")
	ErrPauseTimeout = errors.New("wasmhost: paused stream timed out")
	ErrStreamDone   = errors.New("wasmhost: stream already answered or closed")
)
