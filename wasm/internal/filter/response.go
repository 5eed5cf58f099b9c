package filter

import (
	"bytes"
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

func (p *Plugin) onResponseHeaders(s *stream) abi.Action {
	b, st := abi.GetHeaderMapPairs(abi.MapResponseHeaders)
	if st == abi.StatusOK {
		s.rm = s.rm[:0]
		it := abi.NewPairIter(b)
		for it.Next() {
			k := it.Key()
			if !hasPrefixFold(k, hdrPrefix) {
				continue
			}
			if equalFold(k, hdrToken) && len(s.upToken) == 0 {
				s.upToken = append(s.upToken[:0], trimSpace(it.Value())...)
			}
			s.rm = append(append(s.rm, k...), 0)
		}
		for rm := s.rm; len(rm) > 0; {
			i := bytes.IndexByte(rm, 0)
			abi.RemoveHeader(abi.MapResponseHeaders, rm[:i])
			rm = rm[i+1:]
		}
	}
	if len(s.upToken) > 0 {
		p.acceptUpstreamToken(s)
	}
	if len(s.newToken) > 0 {
		p.handOut(s, abi.MapResponseHeaders)
	}
	return abi.ActionContinue
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

// handOut gives s.newToken to the client: a Set-Cookie, or the token
// response header for cookie-less clients. Headers are added, never
// replaced, so the app's own Set-Cookie headers survive.
func (p *Plugin) handOut(s *stream, mt abi.MapType) {
	if s.headerMode {
		abi.AddHeader(mt, p.cfg.TokenResponse, s.newToken)
		return
	}
	abi.AddHeader(mt, "set-cookie", p.appendSetCookie(s.out[:0], s))
}

// appendSetCookie appends the Set-Cookie value for s.newToken.
func (p *Plugin) appendSetCookie(dst []byte, s *stream) []byte {
	c := &p.cfg.Cookie
	dst = append(dst, c.Name...)
	dst = append(dst, '=')
	dst = append(dst, s.newToken...)
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
// handing out a new token if there is one.
func (p *Plugin) reply(s *stream, status uint32, details string, body []byte) abi.Action {
	var hs [5][2]string
	n := 0
	hs[n] = [2]string{"cache-control", "no-store"}
	n++
	if body != nil {
		hs[n] = [2]string{"content-type", "application/json"}
		n++
	}
	if len(s.newToken) > 0 {
		if s.headerMode {
			hs[n] = [2]string{p.cfg.TokenResponse, string(s.newToken)}
		} else {
			hs[n] = [2]string{"set-cookie", string(p.appendSetCookie(nil, s))}
		}
		n++
	}
	kv := make([]string, 0, 2*n)
	for _, h := range hs[:n] {
		kv = append(kv, h[0], h[1])
	}
	abi.SendLocalResponse(status, details, body, abi.AppendPairs(nil, kv...))
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
