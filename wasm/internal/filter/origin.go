package filter

import (
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// callKind says what an HTTP call to the origin was for.
type callKind uint8

const (
	callFetch   callKind = iota + 1 // GET /v1/sessions/{id}
	callWrite                       // self-service PATCH or DELETE
	callPoll                        // GET /v1/sync
	callTouch                       // POST /v1/sync/touch
	callLogout                      // POST /v1/sessions/{id}/logout (soft logout)
	callCapture                     // PATCH /v1/sessions/{id}/context with captured values; nothing waits
	callPeers                       // GET or DELETE /v1/sessions/{id}/peers (self-service)
	callProbe                       // GET /v1/sync?limit=1: the circuit breaker's probe from the tick
)

// call is one HTTP call in flight. HTTP calls belong to the root context, so
// the streams waiting for one are listed here; a stream deleted meanwhile is
// detached and the reply goes nowhere.
type call struct {
	kind       callKind
	id         wire.ID
	gen        uint32 // the generation of the token presented
	minVersion uint64 // callFetch: the least version asked for
	// callFetch: the newest feed delta of the session that passed while
	// the call was in flight, when nothing was cached to apply it to; an
	// older answer is served once, then fetched again.
	feedVersion uint64
	probe       bool // the breaker's half-open probe
	// stale: the VM dropped its cache while the call was in flight (it
	// missed feed deltas, see dropCache); the answer may predate them, so
	// it serves the requests that waited and is not kept.
	stale   bool
	streams []*stream
	from    string       // callPoll: the cursor asked from
	touches []wire.Touch // callTouch: the reports, put back if the post fails
	accept  string       // the answer's media type; default application/cbor
	init    string       // X-Session-Init: what creates the session if the origin does not know it
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

// The header the edge presents a client's token in, and the origin returns
// a new one in.
const hdrOriginToken = "x-session-token"

// hdrOriginInit carries, on a self-service write that may create the
// session, a one-touch report with what the edge applied to it.
const hdrOriginInit = "x-session-init"

// send makes an HTTP call to the origin on behalf of the root context. The
// call is made with the root as the effective context, whatever callback we
// are in, so every host delivers the reply to the root; back (a stream id,
// or 0) is made effective again afterwards. token, when set, is presented
// in X-Session-Token: the origin checks it (and its generation) on every
// call made for a client.
func (p *Plugin) send(method, path, contentType string, body, token []byte, c *call, back uint32) bool {
	o := &p.cfg.Origin
	kv := make([]string, 0, 16)
	accept := c.accept
	if accept == "" {
		accept = "application/cbor"
	}
	kv = append(kv, ":method", method, ":path", path, ":authority", o.Authority, ":scheme", "http", "accept", accept)
	if o.APIKey != "" {
		kv = append(kv, "authorization", "Bearer "+o.APIKey)
	}
	if contentType != "" {
		kv = append(kv, "content-type", contentType)
	}
	if len(token) > 0 {
		kv = append(kv, hdrOriginToken, string(token))
	}
	if c.init != "" {
		kv = append(kv, hdrOriginInit, c.init)
	}
	p.callBuf = abi.AppendPairs(p.callBuf[:0], kv...)
	abi.SetEffectiveContext(p.id)
	tok, st := abi.HTTPCall(o.Cluster, p.callBuf, body, o.TimeoutMs)
	if back != 0 {
		abi.SetEffectiveContext(back)
	}
	if st != abi.StatusOK {
		logf(abi.LogWarn, "cannot call the origin cluster "+o.Cluster+" ("+method+" "+routeName(c.kind)+"): "+st.Err().Error())
		return false
	}
	p.calls[tok] = c
	return true
}

// routeName names a call in log lines, which never show session ids.
func routeName(k callKind) string {
	switch k {
	case callFetch:
		return "session"
	case callWrite:
		return "self-service write"
	case callPoll:
		return "sync feed"
	case callTouch:
		return "touch report"
	case callLogout:
		return "logout"
	case callCapture:
		return "capture write"
	case callPeers:
		return "sessions"
	case callProbe:
		return "breaker probe"
	}
	return "call"
}

func (p *Plugin) sessionPath(id wire.ID, suffix string) string {
	b := append(p.pathBuf[:0], "/v1/sessions/"...)
	b = id.AppendText(b)
	b = append(b, suffix...)
	p.pathBuf = b
	return string(b)
}

// startFetch asks the origin for the stream's session, presenting its
// token. Requests for one session at one generation share the call (when
// it asks for at least the version they need). With the circuit breaker
// open it returns false at once.
func (p *Plugin) startFetch(s *stream) bool {
	if c := p.inflight[s.claims.ID]; c != nil && c.kind == callFetch && c.gen == s.claims.Generation && c.minVersion >= s.minVersion {
		c.streams = append(c.streams, s)
		s.waiting = c
		return true
	}
	ok, probe := p.breakerAllow(s.nowMs)
	if !ok {
		p.counters.BreakerRefused++
		return false
	}
	c := &call{kind: callFetch, id: s.claims.ID, gen: s.claims.Generation, minVersion: s.minVersion, probe: probe, streams: []*stream{s}}
	p.counters.Fetches++
	path := p.sessionPath(s.claims.ID, "")
	if s.minVersion > 0 {
		path += "?minVersion=" + strconv.FormatUint(s.minVersion, 10)
	}
	if !p.send("GET", path, "", nil, s.tok, c, s.id) {
		p.breakerRecord(false, probe, s.nowMs)
		return false
	}
	p.inflight[c.id] = c
	p.fetches++
	p.metricAdd(p.metrics.fetchesInFlight, 1)
	s.waiting = c
	return true
}

// startLogout soft-logs-out an idle-expired customer session through the
// origin, presenting the expired token: the origin logs out only the
// generation the token carries, so an old token can never log out a newer
// login. Requests with the same token share the call. Without the origin
// the client starts a new anonymous session.
func (p *Plugin) startLogout(s *stream, now int64) abi.Action {
	if c := p.inflight[s.claims.ID]; c != nil && c.kind == callLogout && c.gen == s.claims.Generation {
		c.streams = append(c.streams, s)
		s.waiting = c
		return p.pause(s)
	}
	ok, probe := p.breakerAllow(s.nowMs)
	if !ok {
		p.counters.BreakerRefused++
		p.mint(s, now)
		return p.settled(s, now)
	}
	c := &call{kind: callLogout, id: s.claims.ID, gen: s.claims.Generation, probe: probe, streams: []*stream{s}}
	p.counters.Logouts++
	if !p.send("POST", p.sessionPath(s.claims.ID, "/logout"), "", nil, s.tok, c, s.id) {
		p.breakerRecord(false, probe, s.nowMs)
		p.mint(s, now)
		return p.settled(s, now)
	}
	p.inflight[c.id] = c
	s.waiting = c
	return p.pause(s)
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
	nowMs := abi.NowNanos() / 1e6
	status := 0
	var newToken []byte
	var body []byte
	if numHeaders > 0 { // zero headers: the call failed (reset, timeout, no cluster)
		status = callStatus()
		if c.kind == callLogout && status == 200 {
			if v, st := abi.GetHeaderMapValue(abi.MapHTTPCallResponseHeaders, hdrOriginToken); st == abi.StatusOK {
				newToken = append([]byte(nil), trimSpace(v)...)
			}
		}
		if bodySize > 0 && bodySize <= maxOriginBody {
			body, _ = abi.GetBufferBytes(abi.BufferHTTPCallResponseBody, 0, bodySize)
		}
	}
	p.breakerRecord(callOK(status), c.probe, nowMs)
	switch c.kind {
	case callFetch:
		p.fetched(c, status, body, nowMs)
	case callWrite:
		p.written(c, status, body, nowMs)
	case callPoll:
		p.polled(vm, c, status, body, nowMs)
	case callTouch:
		p.touchAnswered(c, status)
	case callLogout:
		p.loggedOut(c, status, body, newToken, nowMs)
	case callCapture:
		p.captureWritten(c, status, body, nowMs)
	case callPeers:
		p.peersAnswered(c, status, body, nowMs)
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

// errorCode returns error.code of an origin error body, or "".
func errorCode(body []byte) string {
	if len(body) == 0 || len(body) > 4096 || body[0] != '{' {
		return ""
	}
	v, err := wire.ParseValueJSON(body)
	if err != nil || v.Type != wire.TypeMap {
		return ""
	}
	for _, a := range v.Map {
		if a.Key == "error" && a.Value.Type == wire.TypeMap {
			for _, b := range a.Value.Map {
				if b.Key == "code" && b.Value.Type == wire.TypeText {
					return b.Value.Text
				}
			}
		}
	}
	return ""
}

// tokenRefused reports whether an origin answer says the presented token
// is dead for good: the session ended (410), the token's generation is not
// the session's (409 stale_generation), or the origin refuses the token
// itself (401 invalid_token, token_expired, token_required; 403
// token_mismatch). A 401 for the edge's own API key is not about the token.
func tokenRefused(status int, body []byte) bool {
	switch status {
	case 410:
		return true
	case 409:
		return errorCode(body) == "stale_generation"
	case 401:
		switch errorCode(body) {
		case "invalid_token", "token_expired", "token_required":
			return true
		}
	case 403:
		return errorCode(body) == "token_mismatch"
	}
	return false
}

func (p *Plugin) fetched(c *call, status int, body []byte, nowMs int64) {
	if p.inflight[c.id] == c {
		delete(p.inflight, c.id)
	}
	p.fetches--
	p.metricAdd(p.metrics.fetchesInFlight, -1)
	var e *entry
	dead := false
	switch {
	case status == 200:
		sess, err := p.decodeOriginSession(c.id, body)
		if err != nil {
			logf(abi.LogWarn, "bad session from the origin: "+err.Error())
			break
		}
		if old := p.sessions.peek(c.id); old != nil && old.state == stateOrigin && old.sess.Generation == sess.Generation &&
			old.sess.Ended == 0 && old.sess.Version > sess.Version {
			e = old // the feed brought a newer state meanwhile
		} else {
			e = p.putSession(sess, stateOrigin, true)
		}
		e.checked = nowMs
		e.hintSeen = max(e.hintSeen, c.minVersion)
		if c.minVersion >= e.want {
			e.want = 0 // asked for: whatever the origin had is the answer
		}
	case status == 404:
		// Unknown to the origin: a session minted by an edge whose token
		// came back before the origin heard of it. Only such a token (kind
		// anonymous, generation 1) can start a session; any other is dead.
		if len(c.streams) > 0 {
			cl := &c.streams[0].claims
			if cl.Kind == wire.KindAnonymous && cl.Generation == 1 {
				now := nowMs / 1000
				sess := &wire.Session{ID: c.id, Kind: cl.Kind, Generation: cl.Generation,
					Created: now * 1000, LastSeen: now * 1000, IdleDeadline: cl.IdleDeadline * 1000,
					HardDeadline: cl.HardDeadline * 1000}
				setDefaults(sess, c.streams[0].site)
				// Minted by another VM of this proxy: what it captured.
				sess = p.withMintedInit(sess, cl)
				e = p.putSession(sess, stateUnknown, true)
				e.checked = nowMs
			} else {
				dead = true
			}
		}
	case status == 410:
		p.putSession(&wire.Session{ID: c.id, Ended: wire.EndAbandoned}, stateOrigin, false)
		dead = true
	case tokenRefused(status, body):
		dead = true
	default:
		logf(abi.LogWarn, "session fetch failed (status "+strconv.Itoa(status)+")")
	}
	if e != nil && c.feedVersion > e.sess.Version && c.feedVersion > e.want {
		// The answer predates a delta the feed brought meanwhile (a write,
		// a revocation): the next request through this VM fetches again.
		e.want = c.feedVersion
	}
	c.resume(nowMs, func(s *stream) abi.Action {
		switch {
		case dead || e != nil && (e.sess.Ended != 0 || e.sess.Generation > s.claims.Generation):
			p.counters.Rejected++
			p.tokens.markDead(s.tok)
			s.dead = true
			return p.noToken(s, nowMs/1000)
		case e == nil || e.sess.Generation != s.claims.Generation:
			return p.degrade(s)
		}
		s.entry = e
		return p.settled(s, nowMs/1000)
	})
	if c.stale {
		p.sessions.drop(c.id) // served the waiting requests; the next one fetches again
	}
}

// resume hands every stream that waited for c, in turn the effective
// context, to next, and continues those it lets go on.
func (c *call) resume(nowMs int64, next func(s *stream) abi.Action) {
	waiting := c.streams
	c.streams = nil
	for _, s := range waiting {
		s.waiting = nil
		s.nowMs = nowMs
		abi.SetEffectiveContext(s.id)
		if next(s) == abi.ActionContinue {
			abi.ContinueStream(abi.StreamRequest)
		}
	}
}

// loggedOut finishes a soft logout: on success the client gets the
// origin's anonymous token and the session it returned; on any failure a
// new anonymous session.
func (p *Plugin) loggedOut(c *call, status int, body, token []byte, nowMs int64) {
	if p.inflight[c.id] == c {
		delete(p.inflight, c.id)
	}
	now := nowMs / 1000
	var cl wire.Claims
	var e *entry
	if status == 200 {
		if err := p.cfg.Keyring.VerifyToken(token, now, &cl); err != nil || cl.ID != c.id || cl.Kind != wire.KindAnonymous || cl.Generation <= c.gen {
			logf(abi.LogWarn, "soft logout: the origin's answer carries no usable token")
		} else if sess, err := p.decodeOriginSession(c.id, body); err != nil || sess.Generation != cl.Generation || sess.Ended != 0 {
			logf(abi.LogWarn, "soft logout: bad session from the origin")
		} else {
			e = p.putSession(sess, stateOrigin, true)
			e.checked = nowMs
			p.tokens.put(token, &cl)
		}
	} else if status != 0 && !tokenRefused(status, body) && status != 404 {
		logf(abi.LogWarn, "soft logout not accepted by the origin (status "+strconv.Itoa(status)+")")
	}
	c.resume(nowMs, func(s *stream) abi.Action {
		if e != nil {
			s.claims, s.verified, s.relogged, s.entry = cl, true, true, e
			s.tok = append(s.tok[:0], token...)
			s.newToken = append(s.newToken[:0], token...)
		} else {
			// Refused (an older generation, ended, unknown) or unreachable:
			// the client starts a new anonymous session.
			p.mint(s, now)
		}
		return p.settled(s, now)
	})
	if c.stale && e != nil {
		p.sessions.drop(c.id) // the next request fetches the logged-out session again
	}
}
