package filter

import (
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// callKind says what an HTTP call to the origin was for.
type callKind uint8

const (
	callFetch  callKind = iota + 1 // GET /v1/sessions/{id}
	callWrite                      // self-service PATCH or DELETE
	callPoll                       // GET /v1/sync
	callTouch                      // POST /v1/sync/touch
	callLogout                     // POST /v1/sessions/{id}/logout (soft logout)
)

// call is one HTTP call in flight. HTTP calls belong to the root context, so
// the streams waiting for one are listed here; a stream deleted meanwhile is
// detached and the reply goes nowhere.
type call struct {
	kind    callKind
	id      wire.ID
	streams []*stream
	from    string // callPoll: the cursor asked from
}

func (c *call) detach(s *stream) {
	for i, w := range c.streams {
		if w == s {
			c.streams = append(c.streams[:i], c.streams[i+1:]...)
			return
		}
	}
}

// maxOriginBody bounds what the filter reads of an origin answer: a session
// is at most 10 KiB encoded, a sync batch a few MiB at the default limit.
const maxOriginBody = 16 << 20

// send makes an HTTP call to the origin on behalf of the root context. The
// call is made with the root as the effective context, whatever callback we
// are in, so every host delivers the reply to the root; back (a stream id,
// or 0) is made effective again afterwards.
func (p *Plugin) send(method, path, contentType string, body []byte, c *call, back uint32) bool {
	o := &p.cfg.Origin
	kv := [...]string{":method", method, ":path", path, ":authority", o.Authority, ":scheme", "http",
		"accept", "application/cbor", "authorization", "", "content-type", contentType}
	n := len(kv)
	if contentType == "" {
		n -= 2
	}
	if o.APIKey != "" {
		kv[11] = "Bearer " + o.APIKey
	} else {
		kv[10], kv[11] = kv[n-2], kv[n-1]
		n -= 2
	}
	p.callBuf = abi.AppendPairs(p.callBuf[:0], kv[:n]...)
	abi.SetEffectiveContext(p.id)
	token, st := abi.HTTPCall(o.Cluster, p.callBuf, body, o.TimeoutMs)
	if back != 0 {
		abi.SetEffectiveContext(back)
	}
	if st != abi.StatusOK {
		logf(abi.LogWarn, "cannot call the origin cluster "+o.Cluster+" ("+method+" "+path+"): "+st.Err().Error())
		return false
	}
	p.calls[token] = c
	return true
}

func (p *Plugin) sessionPath(id wire.ID, suffix string) string {
	b := append(p.pathBuf[:0], "/v1/sessions/"...)
	b = id.AppendText(b)
	b = append(b, suffix...)
	p.pathBuf = b
	return string(b)
}

// startFetch asks the origin for the stream's session; concurrent misses of
// one session share the call.
func (p *Plugin) startFetch(s *stream) bool {
	if c := p.fetching[s.claims.ID]; c != nil {
		c.streams = append(c.streams, s)
		s.waiting = c
		return true
	}
	c := &call{kind: callFetch, id: s.claims.ID, streams: []*stream{s}}
	p.counters.Fetches++
	if !p.send("GET", p.sessionPath(s.claims.ID, ""), "", nil, c, s.id) {
		return false
	}
	p.fetching[c.id] = c
	s.waiting = c
	return true
}

func (p *Plugin) postLogout(id wire.ID, back uint32) {
	p.send("POST", p.sessionPath(id, "/logout"), "application/json", []byte("{}"), &call{kind: callLogout, id: id}, back)
}

// callStatus returns the :status of the HTTP-call response being delivered.
func callStatus() int {
	v, st := abi.GetHeaderMapValue(abi.MapHTTPCallResponseHeaders, ":status")
	if st != abi.StatusOK {
		return 0
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0
	}
	return n
}

func (p *Plugin) onHTTPCallResponse(vm *VM, token, numHeaders, bodySize uint32) {
	c := p.calls[token]
	if c == nil {
		return
	}
	delete(p.calls, token)
	status := 0
	var body []byte
	if numHeaders > 0 { // zero headers: the call failed (reset, timeout, no cluster)
		status = callStatus()
		if bodySize > 0 && bodySize <= maxOriginBody {
			body, _ = abi.GetBufferBytes(abi.BufferHTTPCallResponseBody, 0, bodySize)
		}
	}
	switch c.kind {
	case callFetch:
		p.fetched(c, status, body)
	case callWrite:
		p.written(c, status, body)
	case callPoll:
		p.polled(vm, c, status, body)
	case callTouch:
		if status/100 != 2 {
			logf(abi.LogWarn, "touch report not accepted by the origin (status "+strconv.Itoa(status)+")")
		}
	case callLogout:
		if status/100 != 2 {
			logf(abi.LogWarn, "soft logout not accepted by the origin (status "+strconv.Itoa(status)+")")
		}
	}
}

// decodeOriginSession decodes and checks a session the origin sent for id.
func (p *Plugin) decodeOriginSession(id wire.ID, body []byte) (*wire.Session, error) {
	sess := new(wire.Session)
	if err := wire.DecodeSession(body, sess); err != nil {
		return nil, err
	}
	if sess.ID != id {
		return nil, wire.ErrBadDelta
	}
	if sess.Ended == 0 {
		if err := p.cfg.Limits.ValidateSession(sess); err != nil {
			return nil, err
		}
	}
	return sess, nil
}

func (p *Plugin) fetched(c *call, status int, body []byte) {
	delete(p.fetching, c.id)
	now := nowSeconds(abi.NowNanos())
	var e *entry
	switch status {
	case 200:
		sess, err := p.decodeOriginSession(c.id, body)
		if err != nil {
			logf(abi.LogWarn, "bad session from the origin: "+err.Error())
			break
		}
		e = p.sessions.put(sess, stateOrigin)
	case 404:
		// Unknown to the origin (not yet reported, or expired there): a
		// fresh session with the token's metadata and site defaults.
		if len(c.streams) > 0 {
			cl := &c.streams[0].claims
			e = p.sessions.put(&wire.Session{ID: c.id, Kind: cl.Kind, Generation: cl.Generation,
				Created: now * 1000, LastSeen: now * 1000, IdleDeadline: cl.IdleDeadline * 1000,
				HardDeadline: cl.HardDeadline * 1000}, stateUnknown)
		}
	case 410:
		e = p.sessions.put(&wire.Session{ID: c.id, Ended: wire.EndAbandoned}, stateOrigin)
	default:
		logf(abi.LogWarn, "session fetch failed (status "+strconv.Itoa(status)+")")
	}
	waiting := c.streams
	c.streams = nil
	for _, s := range waiting {
		s.waiting = nil
		abi.SetEffectiveContext(s.id)
		if act := p.resume(s, e, now); act == abi.ActionContinue {
			abi.ContinueStream(abi.StreamRequest)
		}
	}
}

// resume continues a stream that waited for its session.
func (p *Plugin) resume(s *stream, e *entry, now int64) abi.Action {
	if e == nil {
		return p.degrade(s)
	}
	if e.sess.Ended != 0 || e.sess.Generation > s.claims.Generation {
		// The token's session ended or was re-keyed: the client starts over.
		p.counters.Rejected++
		p.mint(s, now)
		if s.self == selfPatch || s.self == selfDelete {
			return p.replyError(s, 401, "unauthorized", "session ended")
		}
		e = p.sessions.peek(s.claims.ID)
		if e == nil {
			return p.degrade(s)
		}
	} else if e.sess.Kind == wire.KindCustomer && s.claims.Kind == wire.KindAnonymous && s.claims.Generation > e.sess.Generation {
		e = p.sessions.put(softLoggedOut(e.sess, &s.claims), e.state)
	}
	return p.proceed(s, e, now)
}
