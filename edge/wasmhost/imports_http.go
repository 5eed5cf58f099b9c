package wasmhost

import (
	"context"
	"sync"
	"time"

	"github.com/sessionedge/sessionedge/proxywasm"
)

var callPool = sync.Pool{New: func() any { return &pendingCall{} }}

type pendingCall struct {
	req  CallRequest
	resp CallResponse
}

// proxy_http_call(upstream_ptr, upstream_size, headers_ptr, headers_size,
// body_ptr, body_size, trailers_ptr, trailers_size, timeout_ms, return_call_id):
// starts an HTTP call to a named cluster on its own goroutine. The call
// belongs to the root context: the reply comes back as
// proxy_on_http_call_response(root_context_id, call_id, ...), entering the VM
// only when no other goroutine is in it. An unknown cluster, malformed
// headers, or missing :method, :path or :authority are BAD_ARGUMENT.
func proxyHTTPCall(v *vm, stack []uint64) proxywasm.Status {
	h := v.host
	name, ok1 := v.read(u32(stack[0]), u32(stack[1]))
	hdrs, ok2 := v.read(u32(stack[2]), u32(stack[3]))
	body, ok3 := v.read(u32(stack[4]), u32(stack[5]))
	trailers, ok4 := v.read(u32(stack[6]), u32(stack[7]))
	_, ok5 := v.read(u32(stack[9]), 4)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return proxywasm.StatusInvalidMemoryAccess
	}
	if h.cfg.Clusters == nil || h.closed.Load() {
		return proxywasm.StatusBadArgument
	}
	cluster := h.cfg.Clusters.Cluster(string(name))
	if cluster == nil {
		return proxywasm.StatusBadArgument
	}
	pc := callPool.Get().(*pendingCall)
	req := &pc.req
	if req.Headers.ParseSerialized(hdrs) != nil ||
		indexBytes(&req.Headers, []byte(":method")) < 0 ||
		indexBytes(&req.Headers, []byte(":path")) < 0 ||
		indexBytes(&req.Headers, []byte(":authority")) < 0 {
		callPool.Put(pc)
		return proxywasm.StatusBadArgument
	}
	req.Trailers.Reset()
	if len(trailers) > 0 && req.Trailers.ParseSerialized(trailers) != nil {
		callPool.Put(pc)
		return proxywasm.StatusBadArgument
	}
	req.Cluster = string(name)
	req.Body = append(req.Body[:0], body...)
	timeout := time.Duration(u32(stack[8])) * time.Millisecond
	if timeout <= 0 || timeout > h.cfg.MaxCallTimeout {
		timeout = h.cfg.MaxCallTimeout
	}
	req.Timeout = timeout
	v.nextCallID++
	id := v.nextCallID
	v.writeU32(u32(stack[9]), id)

	h.inflight.Add(1)
	h.calls.Add(1)
	go func() {
		defer h.calls.Done()
		defer h.inflight.Add(-1)
		resp := &pc.resp
		resp.Headers.Reset()
		resp.Trailers.Reset()
		resp.Body = resp.Body[:0]
		cctx, cancel := context.WithTimeout(h.ctx, timeout)
		err := cluster.RoundTrip(cctx, req, resp)
		cancel()
		if err == nil && resp.Headers.Len() == 0 {
			// num_headers == 0 means failure to the guest: a success always
			// carries :status.
			resp.SetStatus(200)
		}
		v.deliver(id, resp, err)
		callPool.Put(pc)
	}()
	return proxywasm.StatusOK
}

// proxy_get_status(return_code, return_message_ptr, return_message_size):
// the status of the last HTTP call delivered to this VM, as a gRPC code:
// 0 after a response, 14 (UNAVAILABLE) after a failure, 4
// (DEADLINE_EXCEEDED) after a timeout.
func proxyGetStatus(v *vm, stack []uint64) proxywasm.Status {
	if !v.writeU32(u32(stack[0]), v.callCode) {
		return proxywasm.StatusInvalidMemoryAccess
	}
	v.scratch = append(v.scratch[:0], v.callMsg...)
	return v.copyOut(v.scratch, u32(stack[1]), u32(stack[2]))
}
