package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/sessionedge/sessionedge/proxywasm"
)

type vmKey struct{}

// vmOf returns the VM whose export is running; every call into a guest
// carries its VM in the context, so host functions need no lookup table.
func vmOf(ctx context.Context) *vm { return ctx.Value(vmKey{}).(*vm) }

// phase says which guest callback is running, for the checks of calls made in
// the wrong phase.
type phase uint8

const (
	phaseNone phase = iota
	phaseInit
	phaseVMStart
	phaseConfigure
	phaseTick
	phaseStream
	phaseCallResponse
	phaseDone
)

const rootContextID = 1

// vm is one instance of the module. mu serializes every entry into the guest:
// a stream callback, a tick, the delivery of an HTTP-call response. Host
// functions run with mu held by their caller and never take it.
type vm struct {
	host *Host
	slot int
	ctx  context.Context

	mu         sync.Mutex
	mod        api.Module
	mem        api.Memory
	fn         exports
	alloc      api.Function
	stack      []uint64 // arguments and results of exports; reused
	allocStack []uint64

	nextID     uint32
	nextCallID uint32
	streams    map[uint32]*Stream
	phase      phase
	cur        *Stream // effective stream context, nil for the root context
	callResp   *CallResponse
	callCode   uint32
	callMsg    string
	rootProps  map[string][]byte
	scratch    []byte
	doneAcked  bool
	trapErr    error

	broken     atomic.Bool
	failed     chan struct{} // closed when the VM fails
	stop       chan struct{} // closed by shutdown
	stopOnce   sync.Once
	closeOnce  sync.Once
	tickPeriod atomic.Int64 // milliseconds
	tickNotify chan struct{}
}

type exports struct {
	contextCreate, vmStart, configure, tick, done, log, delete api.Function
	reqHeaders, reqBody, reqTrailers                           api.Function
	respHeaders, respBody, respTrailers                        api.Function
	httpCallResponse                                           api.Function
	initialize                                                 api.Function
}

func (v *vm) lookupExports() {
	m := v.mod
	f := &v.fn
	f.contextCreate = m.ExportedFunction("proxy_on_context_create")
	f.vmStart = m.ExportedFunction("proxy_on_vm_start")
	f.configure = m.ExportedFunction("proxy_on_configure")
	f.tick = m.ExportedFunction("proxy_on_tick")
	f.done = m.ExportedFunction("proxy_on_done")
	f.log = m.ExportedFunction("proxy_on_log")
	f.delete = m.ExportedFunction("proxy_on_delete")
	f.reqHeaders = m.ExportedFunction("proxy_on_request_headers")
	f.reqBody = m.ExportedFunction("proxy_on_request_body")
	f.reqTrailers = m.ExportedFunction("proxy_on_request_trailers")
	f.respHeaders = m.ExportedFunction("proxy_on_response_headers")
	f.respBody = m.ExportedFunction("proxy_on_response_body")
	f.respTrailers = m.ExportedFunction("proxy_on_response_trailers")
	f.httpCallResponse = m.ExportedFunction("proxy_on_http_call_response")
	if f.initialize = m.ExportedFunction("_start"); f.initialize == nil {
		f.initialize = m.ExportedFunction("_initialize")
	}
	// Prefer the SDK's allocator over a libc malloc: TinyGo and C++ SDKs
	// export both, and proxy_on_memory_allocate is the one meant for memory
	// handed over by the host (Envoy picks malloc first).
	if v.alloc = m.ExportedFunction("proxy_on_memory_allocate"); v.alloc == nil {
		v.alloc = m.ExportedFunction("malloc")
	}
}

// start runs _initialize and the root lifecycle.
func (v *vm) start() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.host
	if v.fn.initialize != nil {
		v.phase = phaseInit
		err := v.fn.initialize.CallWithStack(v.ctx, v.stack)
		v.phase = phaseNone
		if err != nil {
			return errors.Join(ErrVMFailed, err)
		}
	}
	v.nextID = rootContextID
	// The root context: proxy_on_context_create(root, 0), then
	// proxy_on_vm_start and proxy_on_configure with the configuration sizes;
	// the last two refuse with a false result.
	steps := [...]struct {
		f        api.Function
		arg      int
		ph       phase
		rejected error
	}{
		{v.fn.contextCreate, 0, phaseNone, nil},
		{v.fn.vmStart, len(h.cfg.VMConfig), phaseVMStart, ErrVMStartRejected},
		{v.fn.configure, len(h.cfg.PluginConfig), phaseConfigure, ErrConfigRejected},
	}
	for _, st := range steps {
		if st.f == nil {
			continue
		}
		v.stack[0], v.stack[1] = rootContextID, uint64(st.arg)
		if err := v.callLocked(st.f, nil, st.ph); err != nil {
			return err
		}
		if st.rejected != nil && uint32(v.stack[0]) == 0 {
			return st.rejected
		}
	}
	return nil
}

// callLocked calls f with the arguments already in v.stack, with s as the
// effective context (nil: root). mu must be held. A trap or exit marks the VM
// failed and returns an error wrapping ErrVMFailed.
func (v *vm) callLocked(f api.Function, s *Stream, ph phase) error {
	v.cur, v.phase = s, ph
	err := f.CallWithStack(v.ctx, v.stack)
	v.cur, v.phase, v.callResp = nil, phaseNone, nil
	if err == nil && v.trapErr != nil {
		err = v.trapErr
	}
	if err != nil {
		v.failLocked(err)
		return errors.Join(ErrVMFailed, err)
	}
	return nil
}

// failLocked marks the VM failed, wakes every stream paused on it and asks
// the host for a replacement.
func (v *vm) failLocked(err error) {
	if v.broken.Swap(true) {
		return
	}
	close(v.failed)
	h := v.host
	h.logger.Error("wasmhost: VM failed", "slot", v.slot, "err", err)
	if !h.closed.Load() {
		h.replace(v)
	}
}

func (v *vm) tick() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.broken.Load() || v.fn.tick == nil {
		return
	}
	v.stack[0] = rootContextID
	_ = v.callLocked(v.fn.tick, nil, phaseTick)
}

func (v *vm) tickLoop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		p := v.tickPeriod.Load()
		if p > 0 {
			timer.Reset(time.Duration(p) * time.Millisecond)
		}
		select {
		case <-timer.C:
			v.tick()
		case <-v.tickNotify:
			timer.Stop()
		case <-v.stop:
			timer.Stop()
			return
		case <-v.failed:
			timer.Stop()
			return
		}
	}
}

// deliver hands an HTTP-call response to the root context.
func (v *vm) deliver(callID uint32, resp *CallResponse, callErr error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.broken.Load() || v.fn.httpCallResponse == nil {
		return
	}
	var nh, bs, nt int
	if callErr == nil {
		nh, bs, nt = resp.Headers.Len(), len(resp.Body), resp.Trailers.Len()
		v.callCode, v.callMsg = 0, ""
	} else {
		v.callCode, v.callMsg = 14, callErr.Error() // gRPC UNAVAILABLE, as Envoy reports failed calls
		if errors.Is(callErr, context.DeadlineExceeded) {
			v.callCode = 4 // DEADLINE_EXCEEDED
		}
	}
	v.stack[0], v.stack[1], v.stack[2], v.stack[3], v.stack[4] = rootContextID, uint64(callID), uint64(nh), uint64(bs), uint64(nt)
	v.cur, v.phase = nil, phaseCallResponse
	if callErr == nil {
		v.callResp = resp
	}
	err := v.fn.httpCallResponse.CallWithStack(v.ctx, v.stack)
	v.cur, v.phase, v.callResp = nil, phaseNone, nil
	if err == nil && v.trapErr != nil {
		err = v.trapErr
	}
	if err != nil {
		v.failLocked(err)
	}
}

// shutdown stops the tick loop and runs the root context's proxy_on_done and
// proxy_on_delete on a healthy VM.
func (v *vm) shutdown() {
	v.stopOnce.Do(func() { close(v.stop) })
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.broken.Load() {
		return
	}
	if f := v.fn.done; f != nil {
		v.stack[0] = rootContextID
		if v.callLocked(f, nil, phaseDone) != nil {
			return
		}
	}
	if f := v.fn.delete; f != nil {
		v.stack[0] = rootContextID
		_ = v.callLocked(f, nil, phaseNone)
	}
	// Streams still open are failed: their VM is going away.
	if !v.broken.Swap(true) {
		close(v.failed)
	}
}

func (v *vm) close() {
	v.closeOnce.Do(func() {
		v.stopOnce.Do(func() { close(v.stop) })
		v.mu.Lock()
		if !v.broken.Swap(true) {
			close(v.failed)
		}
		_ = v.mod.Close(context.Background())
		v.mu.Unlock()
	})
}

// read returns a view of guest memory; it goes stale when the guest grows its
// memory, so callers copy it before calling back into the guest.
func (v *vm) read(ptr, size uint32) ([]byte, bool) {
	return v.mem.Read(ptr, size)
}

func (v *vm) writeU32(ptr, val uint32) bool {
	return v.mem.WriteUint32Le(ptr, val)
}

// copyOut allocates len(data) bytes in the guest, copies data there and
// stores the address and size at retPtr and retSize. data must not be a view
// of guest memory.
func (v *vm) copyOut(data []byte, retPtr, retSize uint32) proxywasm.Status {
	if _, ok := v.mem.Read(retPtr, 4); !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	if _, ok := v.mem.Read(retSize, 4); !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	var ptr uint32
	if len(data) > 0 {
		v.allocStack[0] = uint64(len(data))
		if err := v.alloc.CallWithStack(v.ctx, v.allocStack); err != nil {
			v.trapErr = err
			return proxywasm.StatusInternalFailure
		}
		ptr = uint32(v.allocStack[0])
		if ptr == 0 || !v.mem.Write(ptr, data) {
			return proxywasm.StatusInvalidMemoryAccess
		}
	}
	v.writeU32(retPtr, ptr)
	v.writeU32(retSize, uint32(len(data)))
	return proxywasm.StatusOK
}

func (v *vm) writeU64(ptr uint32, val uint64) bool {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], val)
	return v.mem.Write(ptr, b[:])
}
