package wasmhost

import (
	"context"
	"errors"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Verdict is what a stream callback decided.
type Verdict uint8

const (
	// Continue forwards the request or response.
	Continue Verdict = iota
	// LocalReply means the guest answered with proxy_send_local_response:
	// Stream.LocalResponse holds the answer, nothing goes upstream.
	LocalReply
	// Reset means the guest closed the stream with proxy_close_stream.
	Reset
	// Buffer means the guest stopped iteration before the end of the stream
	// and waits for (more of) the body: the proxy keeps the headers (or the
	// body so far), delivers the next body bytes to the body callback and
	// forwards only when a later callback returns Continue, or when the guest
	// lets the stream go from another callback (Stream.Release). It is
	// returned only when endOfStream is false and, for headers, the guest has
	// a body callback, as Envoy keeps delivering data to a filter that
	// stopped iteration.
	Buffer
)

// StreamInfo carries what the proxy knows about a request beyond its headers.
type StreamInfo struct {
	// ID is the request.id property (x-request-id).
	ID string
	// SourceAddress is the client's "ip:port", the source.address property.
	SourceAddress string
	// Protocol is the request.protocol property, such as "HTTP/1.1".
	Protocol string
}

// LocalResponse is an answer sent by the guest with proxy_send_local_response.
type LocalResponse struct {
	Status     int
	Details    string
	Headers    HeaderMap
	Body       []byte
	GRPCStatus int32
}

type streamState uint8

const (
	stateIdle streamState = iota // owned by the proxy goroutine
	stateInCallback
	statePaused
	stateClosed
)

// Stream is one HTTP request through the plugin, pinned to one VM. Its
// methods are called by one goroutine (the request's), in order:
// OnRequestHeaders, [OnRequestBody], [OnRequestTrailers], OnResponseHeaders,
// [OnResponseBody], [OnResponseTrailers], Close. Maps and bodies may be read
// and changed between calls, never during one.
type Stream struct {
	host *Host
	vm   *vm
	id   uint32
	info StreamInfo

	reqHeaders, reqTrailers, respHeaders, respTrailers HeaderMap
	reqBody, respBody                                  []byte
	hasResp                                            bool

	// Guarded by vm.mu.
	state     streamState
	held      bool // the last callback returned Buffer: the guest holds the stream
	continued bool // proxy_continue_stream during the callback, or while held
	answered  bool
	verdict   Verdict
	local     LocalResponse
	props     map[string][]byte

	resume chan Verdict // wakes the goroutine waiting on a paused stream
}

// NewStream creates a stream context (proxy_on_context_create) on the next
// healthy VM.
func (h *Host) NewStream(info StreamInfo) (*Stream, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	for tries := 0; tries < 2; tries++ {
		v, err := h.pickVM()
		if err != nil {
			return nil, err
		}
		s := h.streamPool.Get().(*Stream)
		s.host, s.vm, s.info = h, v, info
		v.mu.Lock()
		if v.broken.Load() {
			v.mu.Unlock()
			h.streamPool.Put(s)
			continue
		}
		v.nextID++
		s.id = v.nextID
		v.streams[s.id] = s
		if f := v.fn.contextCreate; f != nil {
			v.stack[0], v.stack[1] = uint64(s.id), rootContextID
			s.state = stateInCallback
			err := v.callLocked(f, s, phaseStream)
			s.state = stateIdle
			if err != nil {
				delete(v.streams, s.id)
				s.state = stateClosed
				v.mu.Unlock()
				return nil, err
			}
		}
		v.mu.Unlock()
		return s, nil
	}
	return nil, ErrNoHealthyVM
}

// ID returns the proxy-wasm context id of the stream (unique per VM).
func (s *Stream) ID() uint32 { return s.id }

// VM returns the index of the VM slot the stream is pinned to.
func (s *Stream) VM() int { return s.vm.slot }

// RequestHeaders returns the request header map, pseudo-headers included.
// The map is owned by the stream and valid until Close.
func (s *Stream) RequestHeaders() *HeaderMap { return &s.reqHeaders }

// RequestTrailers returns the request trailer map.
func (s *Stream) RequestTrailers() *HeaderMap { return &s.reqTrailers }

// ResponseHeaders returns the response header map, with :status.
func (s *Stream) ResponseHeaders() *HeaderMap { return &s.respHeaders }

// ResponseTrailers returns the response trailer map.
func (s *Stream) ResponseTrailers() *HeaderMap { return &s.respTrailers }

// RequestBody returns the request body as the guest left it after the last
// OnRequestBody (buffer 0). Read it only when the stream is not held.
func (s *Stream) RequestBody() []byte { return s.reqBody }

// ResponseBody returns the response body as the guest left it after the
// last OnResponseBody (buffer 1). Read it only when the stream is not held.
func (s *Stream) ResponseBody() []byte { return s.respBody }

// WantsRequestBody reports whether the guest exports proxy_on_request_body.
// When it does not, the proxy can stream the request body past the filter.
func (s *Stream) WantsRequestBody() bool { return s.vm.fn.reqBody != nil }

// WantsResponseBody reports whether the guest exports proxy_on_response_body.
// When it does not, the proxy can stream the response body past the filter.
func (s *Stream) WantsResponseBody() bool { return s.vm.fn.respBody != nil }

// LocalResponse returns the guest's local answer after a LocalReply verdict.
// It is owned by the stream and valid until Close.
func (s *Stream) LocalResponse() *LocalResponse { return &s.local }

// OnRequestHeaders runs proxy_on_request_headers. When the guest pauses, it
// waits until the guest continues or answers, the VM fails (ErrVMFailed) or
// ctx is done (ctx.Err()).
func (s *Stream) OnRequestHeaders(ctx context.Context, endOfStream bool) (Verdict, error) {
	return s.run(ctx, s.vm.fn.reqHeaders, uint64(s.reqHeaders.Len()), b2u(endOfStream), !endOfStream && s.vm.fn.reqBody != nil)
}

// OnRequestBody runs proxy_on_request_body with body as buffer 0: the bytes
// received since the guest last let data through (after Buffer, the held
// bytes followed by the new ones). The stream keeps body until Close or
// until the guest replaces it; RequestBody returns what the guest left.
func (s *Stream) OnRequestBody(ctx context.Context, body []byte, endOfStream bool) (Verdict, error) {
	return s.runBody(ctx, s.vm.fn.reqBody, &s.reqBody, body, endOfStream)
}

// OnRequestTrailers runs proxy_on_request_trailers.
func (s *Stream) OnRequestTrailers(ctx context.Context) (Verdict, error) {
	return s.run(ctx, s.vm.fn.reqTrailers, uint64(s.reqTrailers.Len()), noArg, false)
}

// OnResponseHeaders runs proxy_on_response_headers; fill ResponseHeaders first.
func (s *Stream) OnResponseHeaders(ctx context.Context, endOfStream bool) (Verdict, error) {
	s.hasResp = true
	return s.run(ctx, s.vm.fn.respHeaders, uint64(s.respHeaders.Len()), b2u(endOfStream), !endOfStream && s.vm.fn.respBody != nil)
}

// OnResponseBody runs proxy_on_response_body with body as buffer 1, like
// OnRequestBody.
func (s *Stream) OnResponseBody(ctx context.Context, body []byte, endOfStream bool) (Verdict, error) {
	return s.runBody(ctx, s.vm.fn.respBody, &s.respBody, body, endOfStream)
}

// runBody sets the body under the VM lock, since a held stream's buffers are
// readable from other callbacks, then runs f.
func (s *Stream) runBody(ctx context.Context, f api.Function, dst *[]byte, body []byte, endOfStream bool) (Verdict, error) {
	s.vm.mu.Lock()
	*dst = body
	s.vm.mu.Unlock()
	return s.run(ctx, f, uint64(len(body)), b2u(endOfStream), !endOfStream)
}

// Release reports whether the guest let go of a stream it holds (the last
// callback returned Buffer) from a callback on another context, typically an
// HTTP-call response: with proxy_continue_stream (Continue), or with an
// answer (LocalReply, Reset). When ok, the stream is no longer held: the
// proxy forwards what it kept (RequestBody or ResponseBody) and goes on. A
// stream that is not held reports ok false.
func (s *Stream) Release() (vd Verdict, ok bool) {
	v := s.vm
	v.mu.Lock()
	defer v.mu.Unlock()
	if !s.held || s.state != stateIdle {
		return Continue, false
	}
	switch {
	case s.answered:
		vd = s.verdict
	case s.continued:
		vd = Continue
	default:
		return Continue, false
	}
	s.held, s.continued = false, false
	return vd, true
}

// OnResponseTrailers runs proxy_on_response_trailers.
func (s *Stream) OnResponseTrailers(ctx context.Context) (Verdict, error) {
	return s.run(ctx, s.vm.fn.respTrailers, uint64(s.respTrailers.Len()), noArg, false)
}

const noArg = ^uint64(0)

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// run calls f and, when the guest pauses, waits for it to continue or
// answer; with stopOK a pause is not waited for but returned as Buffer.
func (s *Stream) run(ctx context.Context, f api.Function, a1, a2 uint64, stopOK bool) (Verdict, error) {
	v := s.vm
	v.mu.Lock()
	if s.state == stateClosed {
		v.mu.Unlock()
		return Continue, ErrStreamDone
	}
	if v.broken.Load() {
		v.mu.Unlock()
		return Continue, ErrVMFailed
	}
	if s.answered {
		vd := s.verdict
		v.mu.Unlock()
		return vd, nil
	}
	if f == nil {
		v.mu.Unlock()
		return Continue, nil
	}
	v.stack[0], v.stack[1] = uint64(s.id), a1
	if a2 != noArg {
		v.stack[2] = a2
	}
	s.state, s.continued, s.held = stateInCallback, false, false
	err := v.callLocked(f, s, phaseStream)
	action := uint32(v.stack[0])
	if err != nil {
		s.state = stateIdle
		v.mu.Unlock()
		return Continue, err
	}
	if s.answered {
		s.state = stateIdle
		vd := s.verdict
		s.drain()
		v.mu.Unlock()
		return vd, nil
	}
	if action == 0 || s.continued {
		s.state, s.continued = stateIdle, false
		s.drain()
		v.mu.Unlock()
		return Continue, nil
	}
	if stopOK {
		s.state, s.held = stateIdle, true
		v.mu.Unlock()
		return Buffer, nil
	}
	s.setState(statePaused)
	v.mu.Unlock()
	// The pause timer exists only for streams that pause, so the common
	// path costs no timer.
	var timeout <-chan time.Time
	if d := s.host.cfg.PauseTimeout; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case vd := <-s.resume:
		return vd, nil
	case <-v.failed:
		err = ErrVMFailed
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = ErrPauseTimeout
	}
	v.mu.Lock()
	if s.state == statePaused {
		s.setState(stateIdle)
		v.mu.Unlock()
		return Continue, err
	}
	// The guest resumed the stream while the wait expired: honour the guest.
	v.mu.Unlock()
	return <-s.resume, nil
}

func (s *Stream) drain() {
	select {
	case <-s.resume:
	default:
	}
}

// resumeLocked wakes the goroutine of a paused stream. vm.mu is held.
func (s *Stream) resumeLocked(vd Verdict) {
	if s.state != statePaused {
		return
	}
	s.setState(stateIdle)
	select {
	case s.resume <- vd:
	default:
	}
}

// setState changes the state and keeps Host.PausedStreams; vm.mu is held.
func (s *Stream) setState(st streamState) {
	if s.state == statePaused {
		s.host.paused.Add(-1)
	}
	if st == statePaused {
		s.host.paused.Add(1)
	}
	s.state = st
}

// accessible reports whether host functions may touch the stream's maps and
// buffers: only while the proxy waits for the guest (in a callback, paused,
// or held), never while the proxy itself works on them.
func (s *Stream) accessible() bool {
	return s.state == stateInCallback || s.state == statePaused || s.held
}

// Close ends the stream: proxy_on_done, proxy_on_log, proxy_on_delete, then
// the stream returns to a pool. The stream must not be used afterwards.
func (s *Stream) Close() {
	v := s.vm
	v.mu.Lock()
	if s.state == stateClosed {
		v.mu.Unlock()
		return
	}
	delete(v.streams, s.id)
	s.held = false
	if !v.broken.Load() {
		s.setState(stateInCallback)
		for _, f := range [...]api.Function{v.fn.done, v.fn.log, v.fn.delete} {
			if f == nil {
				continue
			}
			v.stack[0] = uint64(s.id)
			if v.callLocked(f, s, phaseStream) != nil {
				break
			}
		}
	}
	s.setState(stateClosed)
	v.mu.Unlock()
	s.reset()
	s.host.streamPool.Put(s)
}

func (s *Stream) reset() {
	s.reqHeaders.Reset()
	s.reqTrailers.Reset()
	s.respHeaders.Reset()
	s.respTrailers.Reset()
	s.reqBody, s.respBody, s.hasResp = nil, nil, false
	s.continued, s.answered, s.verdict, s.held = false, false, Continue, false
	s.local.Status, s.local.Details, s.local.Body, s.local.GRPCStatus = 0, "", s.local.Body[:0], 0
	s.local.Headers.Reset()
	s.props = nil
	s.info = StreamInfo{}
	s.drain()
	s.state = stateIdle
}

var errWrongPhase = errors.New("wasmhost: wrong phase")
