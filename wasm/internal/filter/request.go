package filter

import (
	"bytes"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// selfOp is the self-service operation a request asks for.
type selfOp uint8

const (
	selfNone selfOp = iota
	selfGet
	selfPatch
	selfDelete
	selfNotFound
	selfBadMethod
)

// maxCandidates bounds the session cookies of one request we try: a client
// can hold several (set for different paths or by a sibling domain).
const maxCandidates = 4

// stream is the filter state of one HTTP stream. Buffers are kept across
// reuse (VM.free), so a warm request allocates nothing.
type stream struct {
	id uint32
	p  *Plugin

	claims     wire.Claims
	verified   bool // the request carried a valid token of this session
	minted     bool
	headerMode bool   // the client uses the token header, not the cookie
	newToken   []byte // token to hand to the client, if any
	upToken    []byte // x-session-token from the upstream response

	site    *config.Site
	entry   *entry // the cached session resolve found or made, if any
	self    selfOp
	selfKey []byte
	waiting *call

	host  []byte
	path  []byte
	cands [maxCandidates][wire.TokenLen]byte
	ncand int
	rm    []byte // NUL-terminated header names to remove
	out   []byte // local-response and cookie scratch
	tmp   [64]byte

	// Request header writes (see forward): the client's map, the headers
	// to add, and the serialized result.
	single  bool
	raw     []byte
	addKeys []string
	addVals [][]byte
	ser     []byte
	gen     []byte
	idText  []byte
}

func (s *stream) reset(id uint32, p *Plugin) {
	s.id, s.p = id, p
	s.claims = wire.Claims{}
	s.verified, s.minted, s.headerMode = false, false, false
	s.newToken, s.upToken = s.newToken[:0], s.upToken[:0]
	s.site, s.self, s.selfKey, s.waiting, s.entry = nil, selfNone, s.selfKey[:0], nil, nil
	s.host, s.path, s.ncand, s.rm = s.host[:0], s.path[:0], 0, s.rm[:0]
	s.single = p.cfg == nil || p.cfg.SingleHeaderWrites
	s.raw, s.addKeys, s.addVals = s.raw[:0], s.addKeys[:0], s.addVals[:0]
}

// addCandidate keeps a token-shaped value for verification. Values of the
// wrong length cannot verify, so they are dropped without further work.
func (s *stream) addCandidate(v []byte) {
	if len(v) == wire.TokenLen && s.ncand < maxCandidates {
		copy(s.cands[s.ncand][:], v)
		s.ncand++
	}
}

// scanCookies finds every cookie called name in one cookie header value
// ("a=1; name=TOKEN; b=2"). Malformed pieces are skipped.
func (s *stream) scanCookies(v []byte, name string) {
	for len(v) > 0 {
		var part []byte
		if i := bytes.IndexByte(v, ';'); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, nil
		}
		part = trimSpace(part)
		eq := bytes.IndexByte(part, '=')
		if eq < 0 || string(trimSpace(part[:eq])) != name {
			continue
		}
		val := trimSpace(part[eq+1:])
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		s.addCandidate(val)
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// hasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring case: hosts lower-case keys, but a careless one must not let a
// spoofed X-Session-Id through.
func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

func equalFold(b []byte, s string) bool { return len(b) == len(s) && hasPrefixFold(b, s) }

func nowSeconds(ns int64) int64 { return ns / int64(time.Second) }

func (p *Plugin) onRequestHeaders(vm *VM, s *stream, eos bool) abi.Action {
	p.counters.Requests++
	nowSec := nowSeconds(abi.NowNanos())
	b, st := abi.GetHeaderMapPairs(abi.MapRequestHeaders)
	if st != abi.StatusOK {
		// Without the headers the spoofed x-session-* ones cannot be
		// stripped either: refuse rather than forward them.
		logf(abi.LogError, "cannot read request headers")
		return p.reply(s, 500, "sessionedge_headers", nil)
	}
	cfg := p.cfg
	var method []byte
	it := abi.NewPairIter(b)
	for it.Next() {
		k, v := it.Key(), it.Value()
		switch {
		case hasPrefixFold(k, hdrPrefix):
			s.rm = append(append(s.rm, k...), 0)
		case equalFold(k, "cookie"):
			s.scanCookies(v, cfg.Cookie.Name)
		case len(k) > 0 && k[0] == ':':
			switch string(k) {
			case ":authority":
				s.host = append(s.host[:0], v...)
			case ":path":
				s.path = append(s.path[:0], v...)
			case ":method":
				method = append(s.tmp[:0], v...)
			}
		case cfg.TokenRequest != "" && equalFold(k, cfg.TokenRequest):
			s.headerMode = true
			s.addCandidate(trimSpace(v))
		}
	}
	if it.Err() != nil {
		// A map we cannot parse whole cannot be rewritten whole either.
		logf(abi.LogWarn, "malformed request header map from the host")
		s.single = true
	}
	if s.single {
		for rm := s.rm; len(rm) > 0; {
			i := bytes.IndexByte(rm, 0)
			abi.RemoveHeader(abi.MapRequestHeaders, rm[:i])
			rm = rm[i+1:]
		}
	} else {
		s.raw = append(s.raw[:0], b...) // b is valid only until the next getter
	}
	s.site = p.site(s.host)
	s.classifySelf(cfg.SelfServicePrefix, method)
	p.resolve(s, nowSec)

	switch s.self {
	case selfNotFound:
		return p.replyError(s, 404, "not_found", "no such self-service endpoint")
	case selfBadMethod:
		return p.replyError(s, 405, "method_not_allowed", "method not allowed here")
	case selfPatch, selfDelete:
		if !s.verified {
			return p.replyError(s, 401, "unauthorized", "a valid session token is required to change the context")
		}
		if s.self == selfDelete {
			return p.startDelete(s)
		}
		if eos {
			return p.replyError(s, 400, "invalid_input", "PATCH context needs a JSON body")
		}
		return abi.ActionPause // wait for the body in onRequestBody
	}

	if !s.claims.Kind.Valid() {
		return p.degrade(s)
	}
	if e := s.entry; e != nil {
		return p.proceed(s, e, nowSec)
	}
	if p.startFetch(s) {
		// Strip spoofed headers now: should the host give up on the paused
		// stream and forward it anyway, they must not reach the upstream.
		if !s.single {
			for rm := s.rm; len(rm) > 0; {
				i := bytes.IndexByte(rm, 0)
				abi.RemoveHeader(abi.MapRequestHeaders, rm[:i])
				rm = rm[i+1:]
			}
		}
		return abi.ActionPause
	}
	return p.degrade(s)
}

// classifySelf sets s.self from the path and method.
func (s *stream) classifySelf(prefix string, method []byte) {
	path := s.path
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if !bytes.HasPrefix(path, []byte(prefix)) {
		return
	}
	rest := path[len(prefix):]
	switch {
	case string(rest) == "context":
		switch string(method) {
		case "GET", "HEAD":
			s.self = selfGet
		case "PATCH":
			s.self = selfPatch
		default:
			s.self = selfBadMethod
		}
	case bytes.HasPrefix(rest, []byte("context/public/")):
		s.selfKey = append(s.selfKey[:0], rest[len("context/public/"):]...)
		if string(method) == "DELETE" {
			s.self = selfDelete
		} else {
			s.self = selfBadMethod
		}
	default:
		s.self = selfNotFound
	}
}

// resolve finds the session of the request: a verified token (from the
// cache or by HMAC), after deadlines, generation and idle action; or a new
// anonymous session.
func (p *Plugin) resolve(s *stream, now int64) {
	kr := p.cfg.Keyring
	for i := 0; i < s.ncand; i++ {
		tok := s.cands[i][:]
		cl, ok := p.tokens.get(tok)
		var err error
		if ok {
			p.counters.CacheHits++
			err = checkDeadlines(&cl, now)
		} else {
			p.counters.Verified++
			if err = kr.VerifyToken(tok, now, &cl); err == nil || err == wire.ErrTokenIdleExpired {
				p.tokens.put(tok, &cl)
			}
		}
		if err != nil && err != wire.ErrTokenIdleExpired {
			continue
		}
		e := p.sessions.get(cl.ID)
		if e != nil && (e.sess.Ended != 0 || e.sess.Generation > cl.Generation) {
			p.counters.Rejected++
			continue
		}
		if err == wire.ErrTokenIdleExpired {
			p.counters.IdleActions++
			switch p.cfg.Kinds[cl.Kind].OnIdle {
			case config.IdleSoftLogout:
				p.softLogout(s, &cl, now)
				return
			case config.IdleEnd:
				// The session is over; the origin ends it on its own idle
				// timer, fed by our touch reports. The client starts over.
				p.mint(s, now)
				return
			}
		}
		s.claims, s.verified, s.entry = cl, true, e
		p.maybeReissue(s, now)
		return
	}
	p.mint(s, now)
}

// checkDeadlines re-checks the deadlines of cached claims at now, with the
// errors VerifyToken would return.
func checkDeadlines(c *wire.Claims, now int64) error {
	if c.HardDeadline != 0 && now >= c.HardDeadline {
		return wire.ErrTokenHardExpired
	}
	if c.IdleDeadline != 0 && now >= c.IdleDeadline {
		return wire.ErrTokenIdleExpired
	}
	return nil
}

// maybeReissue rolls the idle deadline forward, only once less than half of
// the idle window is left, so most requests set no cookie.
func (p *Plugin) maybeReissue(s *stream, now int64) {
	pol := p.cfg.Kinds[s.claims.Kind]
	window := int64(pol.Idle / time.Second)
	if s.claims.IdleDeadline == 0 || window == 0 || s.claims.IdleDeadline-now >= window/2 {
		return
	}
	s.claims.IssuedAt = now
	s.claims.IdleDeadline = capDeadline(now+window, s.claims.HardDeadline)
	p.counters.Reissued++
	p.issue(s)
	p.touches.add(&s.claims, now*1000)
}

func capDeadline(d, hard int64) int64 {
	if hard != 0 && d > hard {
		return hard
	}
	return d
}

// issue signs s.claims into s.newToken and remembers it as verified.
func (p *Plugin) issue(s *stream) {
	s.claims.KeyID = p.cfg.Keyring.Active()
	s.newToken = p.cfg.Keyring.AppendToken(s.newToken[:0], &s.claims)
	p.tokens.put(s.newToken, &s.claims)
}

// mint starts a new anonymous session, locally: the origin learns of it
// from the next touch report.
func (p *Plugin) mint(s *stream, now int64) {
	id, err := wire.NewID()
	if err != nil {
		// Without randomness no id is safe to hand out; the request goes on
		// without a session and is marked degraded.
		logf(abi.LogCritical, "no randomness for a session id: "+err.Error())
		s.claims = wire.Claims{}
		return
	}
	pol := p.cfg.Kinds[wire.KindAnonymous]
	s.claims = wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now}
	if pol.Hard > 0 {
		s.claims.HardDeadline = now + int64(pol.Hard/time.Second)
	}
	if pol.Idle > 0 {
		s.claims.IdleDeadline = capDeadline(now+int64(pol.Idle/time.Second), s.claims.HardDeadline)
	}
	s.minted, s.verified = true, false
	p.counters.Minted++
	p.issue(s)
	sess := &wire.Session{ID: id, Kind: wire.KindAnonymous, Generation: 1, Created: now * 1000, LastSeen: now * 1000,
		IdleDeadline: s.claims.IdleDeadline * 1000, HardDeadline: s.claims.HardDeadline * 1000}
	s.entry = p.sessions.put(sess, stateLocal)
}

// softLogout applies the customer idle action: the session stays (same id,
// cart and custom attributes) but becomes anonymous with a new generation
// and no privacy attributes. The origin is told with an asynchronous logout
// call; its logout delta later replaces the local view.
func (p *Plugin) softLogout(s *stream, cl *wire.Claims, now int64) {
	pol := p.cfg.Kinds[wire.KindAnonymous]
	next := *cl
	next.Kind = wire.KindAnonymous
	next.Generation++
	next.IssuedAt = now
	next.HardDeadline = 0
	if pol.Hard > 0 {
		next.HardDeadline = now + int64(pol.Hard/time.Second)
	}
	next.IdleDeadline = 0
	if pol.Idle > 0 {
		next.IdleDeadline = capDeadline(now+int64(pol.Idle/time.Second), next.HardDeadline)
	}
	s.claims, s.verified = next, true
	p.issue(s)
	s.entry = nil
	if e := p.sessions.peek(cl.ID); e != nil {
		s.entry = p.sessions.put(softLoggedOut(e.sess, &next), e.state)
	}
	p.postLogout(cl.ID, s.id)
}

// softLoggedOut returns sess as seen after a soft logout to claims cl.
func softLoggedOut(sess *wire.Session, cl *wire.Claims) *wire.Session {
	n := sess.Clone()
	n.Kind = wire.KindAnonymous
	n.Generation = cl.Generation
	n.Fields[wire.FieldCustomerID] = wire.Value{}
	n.Attrs[wire.NamespacePrivacy] = nil
	n.IdleDeadline, n.HardDeadline = cl.IdleDeadline*1000, cl.HardDeadline*1000
	return n
}

// proceed finishes the request side once the session's entry is known:
// a self-service answer, or the forwarded headers.
func (p *Plugin) proceed(s *stream, e *entry, now int64) abi.Action {
	if e.touched != p.touches.epoch {
		e.touched = p.touches.epoch
		p.touches.add(&s.claims, now*1000)
	}
	if s.self == selfGet {
		return p.replyView(s, e)
	}
	status := statusOK
	if e.state != stateOrigin {
		status = statusNew
	}
	p.addForwarded(s, e, s.site, status)
	return p.forward(s)
}

// degrade handles a session whose context is unavailable: 503 when
// fail-closed, else forward what the token says.
func (p *Plugin) degrade(s *stream) abi.Action {
	if p.cfg.FailClosed {
		p.counters.FailClosed++
		return p.replyError(s, 503, "unavailable", "session context unavailable")
	}
	p.counters.Degraded++
	if s.self == selfGet {
		return p.replyError(s, 503, "unavailable", "session context unavailable")
	}
	if s.claims.Kind.Valid() {
		p.addDegraded(s, s.site)
		p.touches.add(&s.claims, nowSeconds(abi.NowNanos())*1000)
	} else {
		s.add(hdrStatus, statusDegradedBytes)
	}
	return p.forward(s)
}
