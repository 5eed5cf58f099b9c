package filter

import (
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// maxPatchBody bounds a self-service PATCH body: a session encodes to at
// most 10 KiB, and JSON is larger than CBOR, but not by this much.
const maxPatchBody = 32 << 10

func (p *Plugin) onRequestBody(vm *VM, s *stream, size uint32, eos bool) abi.Action {
	if s.waiting != nil {
		// The headers wait for the session (or a write): hold the body too.
		// A host continues a stream whose body callback says continue, even
		// after the headers callback paused (Envoy does), and the request
		// would leave without its session headers.
		return abi.ActionPause
	}
	if s.self != selfPatch {
		return abi.ActionContinue
	}
	if size > maxPatchBody {
		s.self = selfNone
		return p.replyError(s, 413, "too_large", "body larger than "+strconv.Itoa(maxPatchBody)+" bytes")
	}
	if !eos {
		// The host buffers until the end of the body, which may come with
		// the trailers instead (onRequestTrailers).
		s.bodySize = size
		return abi.ActionPause
	}
	return p.patchBody(s, size)
}

// onRequestTrailers runs when the client ends the request with trailers:
// the end of the stream comes with them, not with the last body chunk
// (HTTP/2, gRPC-web). A request that waits for the origin stays held; a
// self-service PATCH that waits for its body takes what the host holds as
// the whole body and is answered here, so neither ever reaches the app.
func (p *Plugin) onRequestTrailers(s *stream) abi.Action {
	if s.waiting != nil {
		return abi.ActionPause
	}
	if s.self == selfPatch && !s.replied {
		return p.patchBody(s, s.bodySize)
	}
	return abi.ActionContinue
}

// patchBody answers a self-service PATCH once its body (size bytes, held by
// the host) is complete: checked, then written to the origin.
func (p *Plugin) patchBody(s *stream, size uint32) abi.Action {
	if size == 0 {
		return p.replyError(s, 400, "invalid_input", "PATCH context needs a JSON body")
	}
	body, st := abi.GetBufferBytes(abi.BufferRequestBody, 0, size)
	if st != abi.StatusOK {
		return p.replyError(s, 400, "invalid_input", "cannot read the body")
	}
	if msg, field := p.checkPatch(s, body); msg != "" {
		return p.replyErrorField(s, 400, msg, field)
	}
	// The host's buffer lasts until the next getter: startWrite may read a
	// property first.
	s.body = append(s.body[:0], body...)
	return p.startWrite(s, "PATCH", p.sessionPath(s.claims.ID, "/context"), "application/json", s.body)
}

// startWrite sends a self-service write to the origin, presenting the
// client's token: the origin applies it only to the session and
// generation the token names (and creates a session an edge minted).
func (p *Plugin) startWrite(s *stream, method, path, contentType string, body []byte) abi.Action {
	ok, probe := p.breakerAllow(s.nowMs)
	if !ok {
		p.counters.BreakerRefused++
		return p.replyError(s, 503, "unavailable", "origin unavailable")
	}
	c := &call{kind: callWrite, id: s.claims.ID, gen: s.claims.Generation, probe: probe, streams: []*stream{s}}
	if mayCreate(s) {
		c.init = p.initHeader(s)
	}
	if !p.send(method, path, contentType, body, s.tok, c, s.id) {
		p.breakerRecord(false, probe, s.nowMs)
		return p.replyError(s, 503, "unavailable", "origin unreachable")
	}
	s.waiting = c
	return abi.ActionPause
}

// crossSite reports whether a self-service write comes from another site:
// Sec-Fetch-Site present and not same-origin, same-site or none, or an
// Origin header that is neither the request's own origin (scheme and
// authority) nor one of selfServiceOrigins.
func (p *Plugin) crossSite(s *stream) bool {
	if s.crossSite {
		return true
	}
	if !s.hasOrigin {
		return false
	}
	origin := config.CanonicalOrigin(nil, appendLower(nil, s.origin))
	scheme := s.scheme
	if len(scheme) == 0 {
		scheme = []byte("https")
	}
	own := appendLower(nil, scheme)
	own = append(own, "://"...)
	own = config.CanonicalOrigin(nil, appendLower(own, s.host))
	if string(origin) == string(own) {
		return false
	}
	for _, o := range p.cfg.SelfServiceOrigins {
		if string(origin) == o {
			return false
		}
	}
	return true
}

// checkPatch accepts a JSON merge patch of the public namespace and of the
// shopper-settable fields (selfService.fields), checked against the limits
// and against what the request's site allows (a text field takes the
// site's default or a value of its list; null unsets it); it returns a
// message and the offending field otherwise.
func (p *Plugin) checkPatch(s *stream, body []byte) (msg, field string) {
	v, err := wire.ParseValueJSONLimits(body, &p.cfg.Limits)
	if err != nil {
		if fe, ok := err.(*wire.FieldError); ok {
			return fe.Reason, fe.Field
		}
		return err.Error(), ""
	}
	if v.Type != wire.TypeMap {
		return "the body must be a JSON object", ""
	}
	for _, a := range v.Map {
		if a.Key == "public" {
			continue
		}
		f, ok := wire.ParseField(a.Key)
		if !ok {
			return "only public and the shopper's fields can be changed here", a.Key
		}
		if p.cfg.SelfServiceFields&(1<<f) == 0 {
			return "this field cannot be changed here", a.Key
		}
		switch {
		case a.Value.IsZero(): // null: back to the site's default
		case f == wire.FieldTrackingAllowed:
			if a.Value.Type != wire.TypeBool {
				return "must be true, false or null", a.Key
			}
		case a.Value.Type != wire.TypeText:
			return "must be a string or null", a.Key
		case s.site == nil || !s.site.Allows(f, a.Value.Text):
			return "this value is not offered on this site", a.Key
		}
	}
	if _, err := wire.ContextOps(v, false, &p.cfg.Limits); err != nil {
		if fe, ok := err.(*wire.FieldError); ok {
			return fe.Reason, fe.Field
		}
		return err.Error(), ""
	}
	return "", ""
}

func (p *Plugin) startDelete(s *stream) abi.Action {
	key := string(s.selfKey)
	if err := p.cfg.Limits.ValidateKey("public."+key, key); err != nil {
		return p.replyErrorField(s, 400, "bad attribute key", "public."+key)
	}
	return p.startWrite(s, "DELETE", p.sessionPath(s.claims.ID, "/attributes/public/"+key), "", nil)
}

// written answers a self-service write once the origin replied: the new
// view and a consistency hint for its version, so the client's next
// request, through any VM or edge, sees the write.
func (p *Plugin) written(c *call, status int, body []byte, nowMs int64) {
	if c.stale {
		defer p.sessions.drop(c.id) // answers the client, is not kept
	}
	if status == 200 {
		if sess, err := p.decodeOriginSession(c.id, body); err == nil && sess.Ended == 0 {
			if old := p.sessions.peek(c.id); old == nil || old.sess.Generation <= sess.Generation {
				e := p.putSession(sess, stateOrigin, true)
				e.checked = nowMs
			}
		}
	} else {
		p.sessions.drop(c.id) // whatever happened, the origin knows better
	}
	if len(c.streams) == 0 {
		return // the client went away; the write happened anyway
	}
	s := c.streams[0]
	s.waiting = nil
	s.nowMs = nowMs
	abi.SetEffectiveContext(s.id)
	if status != 200 {
		p.replyOriginError(s, status, body, nowMs)
		return
	}
	e := p.sessions.peek(c.id)
	if e == nil || e.sess.Generation != s.claims.Generation {
		logf(abi.LogWarn, "bad session from the origin after a write")
		p.replyError(s, 502, "bad_gateway", "unreadable answer from the origin")
		return
	}
	p.noteWritten(s, e.sess.Version)
	p.replyView(s, e)
}

// replyOriginError answers a self-service request the origin did not
// accept: a refused token is dead (401, with a new session), an
// unreachable origin 503, its 4xx errors are passed on, anything else 502.
func (p *Plugin) replyOriginError(s *stream, status int, body []byte, nowMs int64) {
	switch {
	case tokenRefused(status, body):
		p.tokens.markDead(s.tok)
		p.mint(s, nowMs/1000)
		p.replyError(s, 401, "unauthorized", "the session token is no longer valid")
	case status == 0:
		p.replyError(s, 503, "unavailable", "origin unreachable")
	case status >= 400 && status < 500:
		// The origin's error body says what was wrong; pass it on.
		if len(body) > 0 && len(body) < 4096 && body[0] == '{' {
			s.out = append(s.out[:0], body...)
			p.reply(s, uint32(status), "sessionedge_origin", s.out)
			return
		}
		p.replyError(s, uint32(status), "rejected", "the origin rejected the change")
	default:
		p.replyError(s, 502, "bad_gateway", "origin error (status "+strconv.Itoa(status)+")")
	}
}

// replyErrorField is replyError with the offending field named.
func (p *Plugin) replyErrorField(s *stream, status uint32, msg, field string) abi.Action {
	b := append(s.out[:0], `{"error":{"code":"invalid_input","message":`...)
	b = wire.AppendStringJSON(b, msg)
	if field != "" {
		b = append(b, `,"field":`...)
		b = wire.AppendStringJSON(b, field)
	}
	b = append(b, "}}"...)
	s.out = b
	return p.reply(s, status, "sessionedge_invalid_input", b)
}
