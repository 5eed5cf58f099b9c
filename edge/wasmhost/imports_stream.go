package wasmhost

import (
	"github.com/sessionedge/sessionedge/proxywasm"
)

// proxy_send_local_response(status_code, details_ptr, details_size, body_ptr,
// body_size, headers_ptr, headers_size, grpc_status): answers the effective
// stream. From the root context, on a stream the proxy is not waiting for
// (already continued or answered), it is BAD_ARGUMENT: a stream is answered
// once.
func proxySendLocalResponse(v *vm, stack []uint64) proxywasm.Status {
	details, ok1 := v.read(u32(stack[1]), u32(stack[2]))
	body, ok2 := v.read(u32(stack[3]), u32(stack[4]))
	hdrs, ok3 := v.read(u32(stack[5]), u32(stack[6]))
	if !ok1 || !ok2 || !ok3 {
		return proxywasm.StatusInvalidMemoryAccess
	}
	s := v.cur
	code := u32(stack[0])
	if s == nil || !s.accessible() || s.answered || code < 100 || code > 999 {
		return proxywasm.StatusBadArgument
	}
	l := &s.local
	if len(hdrs) > 0 {
		if l.Headers.ParseSerialized(hdrs) != nil {
			return proxywasm.StatusBadArgument
		}
	} else {
		l.Headers.Reset()
	}
	l.Status = int(code)
	l.Details = string(details)
	l.Body = append(l.Body[:0], body...)
	l.GRPCStatus = int32(u32(stack[7]))
	s.answered, s.verdict = true, LocalReply
	s.resumeLocked(LocalReply)
	return proxywasm.StatusOK
}

func (v *vm) continueStream(t proxywasm.StreamType) proxywasm.Status {
	if t == proxywasm.StreamDownstream || t == proxywasm.StreamUpstream {
		return proxywasm.StatusUnimplemented
	}
	if t > proxywasm.StreamUpstream {
		return proxywasm.StatusBadArgument
	}
	s := v.cur
	if s == nil {
		return proxywasm.StatusBadArgument
	}
	switch {
	case s.state == stateInCallback || s.held:
		s.continued = true
	case s.state == statePaused:
		s.resumeLocked(Continue)
	}
	return proxywasm.StatusOK
}

// proxy_continue_stream(stream_type): resumes the effective stream. Continuing
// a stream that is not paused is OK and does nothing, as in Envoy.
func proxyContinueStream(v *vm, stack []uint64) proxywasm.Status {
	return v.continueStream(proxywasm.StreamType(stack[0]))
}

// proxy_continue_request() of ABI 0.2.0.
func proxyContinueRequest(v *vm, stack []uint64) proxywasm.Status {
	return v.continueStream(proxywasm.StreamRequest)
}

// proxy_continue_response() of ABI 0.2.0.
func proxyContinueResponse(v *vm, stack []uint64) proxywasm.Status {
	return v.continueStream(proxywasm.StreamResponse)
}

// proxy_clear_route_cache() of ABI 0.2.0: this proxy has no route cache.
func proxyClearRouteCache(v *vm, stack []uint64) proxywasm.Status {
	return proxywasm.StatusOK
}

// proxy_close_stream(stream_type): resets the effective stream; the proxy
// answers 502 and closes the connection.
func proxyCloseStream(v *vm, stack []uint64) proxywasm.Status {
	t := proxywasm.StreamType(stack[0])
	if t == proxywasm.StreamDownstream || t == proxywasm.StreamUpstream {
		return proxywasm.StatusUnimplemented
	}
	s := v.cur
	if t > proxywasm.StreamUpstream || s == nil || !s.accessible() || s.answered {
		return proxywasm.StatusBadArgument
	}
	s.answered, s.verdict = true, Reset
	s.resumeLocked(Reset)
	return proxywasm.StatusOK
}

// proxy_set_effective_context(context_id): the root context or a live stream
// of this VM; anything else (a deleted stream, another VM's id) is
// BAD_ARGUMENT, which tells a guest that a late HTTP-call reply has no stream.
func proxySetEffectiveContext(v *vm, stack []uint64) proxywasm.Status {
	id := u32(stack[0])
	if id == rootContextID {
		v.cur = nil
		return proxywasm.StatusOK
	}
	s := v.streams[id]
	if s == nil || s.state == stateClosed {
		return proxywasm.StatusBadArgument
	}
	v.cur = s
	return proxywasm.StatusOK
}

// proxy_done(): the root context signals it finished the work it asked to
// finish when proxy_on_done returned false. Outside that, NOT_FOUND.
func proxyDone(v *vm, stack []uint64) proxywasm.Status {
	if v.phase != phaseDone || v.cur != nil {
		return proxywasm.StatusNotFound
	}
	v.doneAcked = true
	return proxywasm.StatusOK
}
