package filter

import (
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// hdrWritten is the app's read-your-writes report: "the session of this
// request is at version N or later at the origin".
const hdrWritten = "x-session-written"

var nameCacheControl = newFoldName("cache-control")

func (p *Plugin) onResponseHeaders(s *stream) abi.Action {
	if s.replied {
		// A host may run the response callbacks on the filter's own local
		// answer, which already carries its cookies.
		return abi.ActionContinue
	}
	b, st := abi.GetHeaderMapPairs(abi.MapResponseHeaders)
	if st == abi.StatusOK {
		s.rm, s.cc = s.rm[:0], s.cc[:0]
		n, off := pairsStart(b)
		for i := 0; i < n; i++ {
			kl, vl := pairLens(b, i)
			if !pairFits(b, off, kl, vl) {
				break // strip what came before the fault, as PairIter would
			}
			k, val := b[off:off+kl], b[off+kl+1:off+kl+1+vl]
			off += kl + vl + 2
			if !isSessionHeader(k) {
				if equalFoldName(k, &nameCacheControl) {
					if len(s.cc) > 0 {
						s.cc = append(s.cc, ", "...)
					}
					s.cc = append(s.cc, val...)
				}
				continue
			}
			switch {
			case equalHeader(k, hdrToken):
				if len(s.upToken) == 0 {
					s.upToken = append(s.upToken[:0], trimSpace(val)...)
				}
			case equalHeader(k, hdrWritten):
				if v, err := strconv.ParseUint(string(trimSpace(val)), 10, 64); err == nil && v > s.written {
					s.written = v
				} else if err != nil {
					logf(abi.LogWarn, "ignoring an x-session-written from the upstream that is not a version")
				}
			}
			s.rm = append(append(s.rm, k...), 0)
		}
		s.removeAll(abi.MapResponseHeaders)
	}
	if len(s.upToken) > 0 {
		p.acceptUpstreamToken(s)
	}
	if s.written > 0 {
		p.noteWritten(s, s.written)
	}
	if len(s.newToken) > 0 || len(s.hintOut) > 0 {
		p.handOut(s, abi.MapResponseHeaders)
		// A shared cache must not store a response that carries someone's
		// session: private, merged with what the app asked for.
		s.out = mergeCacheControl(s.out[:0], s.cc)
		abi.RemoveHeader(abi.MapResponseHeaders, []byte("cache-control"))
		abi.AddHeader(abi.MapResponseHeaders, "cache-control", s.out)
	}
	return abi.ActionContinue
}

// stripTrailers removes x-session-* trailers (and on requests the token
// and hint headers) from map mt. Request trailers can arrive while the
// headers wait for the origin, so the names go to a list of their own:
// s.rm still describes the request headers.
func stripTrailers(mt abi.MapType, s *stream) {
	b, st := abi.GetHeaderMapPairs(mt)
	if st != abi.StatusOK {
		return
	}
	var names [][]byte
	it := abi.NewPairIter(b)
	for it.Next() {
		if isSessionHeader(it.Key()) || mt == abi.MapRequestTrailers && s.p.stripped(it.Key()) {
			names = append(names, append([]byte(nil), it.Key()...))
		}
	}
	for _, k := range names {
		abi.RemoveHeader(mt, k)
	}
}

// acceptUpstreamToken takes a token the app passed on from the origin (after
// login or logout). It replaces whatever the filter was going to hand out,
// and the cached context of its session is dropped: the origin changed it,
// and the next request fetches the new state.
func (p *Plugin) acceptUpstreamToken(s *stream) {
	var cl wire.Claims
	now := nowSeconds(abi.NowNanos())
	if err := p.cfg.Keyring.VerifyToken(s.upToken, now, &cl); err != nil {
		logf(abi.LogWarn, "ignoring x-session-token from the upstream: "+err.Error())
		return
	}
	s.newToken = append(s.newToken[:0], s.upToken...)
	s.claims = cl
	p.tokens.put(s.newToken, &cl)
	p.sessions.drop(cl.ID)
}

// noteWritten takes a version the session of this request reached at the
// origin: from the app (x-session-written) or a self-service write. An
// older cached copy is not served again (the next request through this VM
// fetches at least that version), and the client gets a consistency hint,
// so its next request through any VM or edge sees at least that version.
func (p *Plugin) noteWritten(s *stream, version uint64) {
	if !s.claims.Kind.Valid() {
		return
	}
	if e := p.sessions.peek(s.claims.ID); e != nil && e.sess.Version < version && e.sess.Generation <= s.claims.Generation {
		e.want = max(e.want, version)
	}
	s.hintOut = p.cfg.Keyring.AppendHint(s.hintOut[:0], s.claims.ID, s.claims.Generation, version)
}

// handOut gives s.newToken and s.hintOut to the client: Set-Cookie, or the
// token and hint response headers for cookie-less clients. Headers are
// added, never replaced, so the app's own Set-Cookie headers survive.
func (p *Plugin) handOut(s *stream, mt abi.MapType) {
	if s.headerMode {
		if len(s.newToken) > 0 {
			abi.AddHeader(mt, p.cfg.TokenResponse, s.newToken)
		}
		if len(s.hintOut) > 0 {
			abi.AddHeader(mt, p.cfg.HintResponse, s.hintOut)
		}
		return
	}
	if len(s.newToken) > 0 {
		abi.AddHeader(mt, "set-cookie", p.appendSetCookie(s.out[:0], s, p.cfg.Cookie.Name, s.newToken))
	}
	if len(s.hintOut) > 0 {
		abi.AddHeader(mt, "set-cookie", p.appendSetCookie(s.out[:0], s, p.cfg.HintCookie, s.hintOut))
	}
}

// appendSetCookie appends a Set-Cookie value with the session cookie's
// attributes.
func (p *Plugin) appendSetCookie(dst []byte, s *stream, name string, value []byte) []byte {
	c := &p.cfg.Cookie
	dst = append(dst, name...)
	dst = append(dst, '=')
	dst = append(dst, value...)
	dst = append(dst, "; Path="...)
	dst = append(dst, c.Path...)
	if c.Domain != "" {
		dst = append(dst, "; Domain="...)
		dst = append(dst, c.Domain...)
	}
	// The cookie lives until the token's hard deadline (the idle deadline
	// moves with every re-issue); no hard deadline makes it a browser-session
	// cookie.
	if s.claims.HardDeadline != 0 {
		age := s.claims.HardDeadline - nowSeconds(abi.NowNanos())
		if age < 0 {
			age = 0
		}
		dst = append(dst, "; Max-Age="...)
		dst = strconv.AppendInt(dst, age, 10)
	}
	if c.HTTPOnly {
		dst = append(dst, "; HttpOnly"...)
	}
	if c.Secure {
		dst = append(dst, "; Secure"...)
	}
	if c.SameSite != "" {
		dst = append(dst, "; SameSite="...)
		dst = append(dst, c.SameSite...)
	}
	return dst
}

// reply answers the stream locally with status and a JSON body (nil: none),
// handing out a new token and hint if there are any. Local answers are
// never stored by a cache.
func (p *Plugin) reply(s *stream, status uint32, details string, body []byte) abi.Action {
	kv := make([]string, 0, 8)
	kv = append(kv, "cache-control", "private, no-store")
	if body != nil {
		kv = append(kv, "content-type", "application/json")
	}
	if len(s.newToken) > 0 {
		if s.headerMode {
			kv = append(kv, p.cfg.TokenResponse, string(s.newToken))
		} else {
			kv = append(kv, "set-cookie", string(p.appendSetCookie(nil, s, p.cfg.Cookie.Name, s.newToken)))
		}
	}
	if len(s.hintOut) > 0 {
		if s.headerMode {
			kv = append(kv, p.cfg.HintResponse, string(s.hintOut))
		} else {
			kv = append(kv, "set-cookie", string(p.appendSetCookie(nil, s, p.cfg.HintCookie, s.hintOut)))
		}
	}
	abi.SendLocalResponse(status, details, body, abi.AppendPairs(nil, kv...))
	s.replied = true
	return abi.ActionPause
}

// replyError answers with the origin API's error shape.
func (p *Plugin) replyError(s *stream, status uint32, code, msg string) abi.Action {
	b := append(s.out[:0], `{"error":{"code":`...)
	b = wire.AppendStringJSON(b, code)
	b = append(b, `,"message":`...)
	b = wire.AppendStringJSON(b, msg)
	b = append(b, "}}"...)
	s.out = b
	return p.reply(s, status, "sessionedge_"+code, b)
}

// replyView answers GET context with the public view: the well-known fields
// (site defaults filled in, customerId left out) and the public namespace.
func (p *Plugin) replyView(s *stream, e *entry) abi.Action {
	if e.sess.Ended != 0 {
		return p.replyError(s, 410, "gone", "session ended")
	}
	v := withDefaults(e.sess, s.site)
	if !v.Fields[wire.FieldCustomerID].IsZero() {
		if v == e.sess {
			v = v.Clone()
		}
		v.Fields[wire.FieldCustomerID] = wire.Value{}
	}
	s.out = wire.AppendContextJSON(s.out[:0], v, 1<<wire.NamespacePublic)
	return p.reply(s, 200, "sessionedge_context", s.out)
}
