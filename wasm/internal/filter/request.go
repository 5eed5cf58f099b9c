package filter

import (
	"bytes"

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
	selfSessions // GET sessions: the customer's sessions, from the origin
	selfRevoke   // DELETE sessions/others: log out every other session
	selfNotFound
	selfBadMethod
)

// write reports whether the operation changes state at the origin.
func (o selfOp) write() bool { return o == selfPatch || o == selfDelete || o == selfRevoke }

// presents reports whether the operation goes to the origin with the
// client's token, which the origin checks (so no fetch comes first).
func (o selfOp) presents() bool { return o.write() || o == selfSessions }

// maxCandidates bounds the session cookies of one request we try: a client
// can hold several (set for different paths or by a sibling domain).
const maxCandidates = 4

// stream is the filter state of one HTTP stream. Buffers are kept across
// reuse (VM.free), so a warm request allocates nothing.
type stream struct {
	id uint32
	p  *Plugin

	claims     wire.Claims
	verified   bool   // the request carried a valid, live token of this session
	minted     bool   // the session was minted for this request
	dead       bool   // a token verified but was refused: older generation, ended session, or the origin said so
	relogged   bool   // the origin soft-logged the session out for this request
	replied    bool   // the filter answered the request itself
	headerMode bool   // the client uses the token header, not the cookie
	eos        bool   // the request headers ended the stream (no body)
	tok        []byte // the token the request presented, exactly as verified
	newToken   []byte // token to hand to the client, if any
	upToken    []byte // x-session-token from the upstream response
	nowMs      int64

	site       *config.Site
	entry      *entry // the cached session resolve found or made, if any
	self       selfOp
	selfKey    []byte
	waiting    *call
	minVersion uint64 // a verified consistency hint newer than the cached copy

	host, path, scheme []byte
	origin             []byte // the Origin header
	hasOrigin          bool
	crossSite          bool // Sec-Fetch-Site says the request is cross-site
	cands              [maxCandidates][wire.TokenLen]byte
	ncand              int
	hint               [wire.HintLen]byte
	hasHint            bool
	rm                 []byte // NUL-terminated header names to remove
	out                []byte // local-response and cookie scratch
	tmp                [64]byte

	// Response side: the app's x-session-written version, the hint to hand
	// out, and the app's Cache-Control values.
	written uint64
	hintOut []byte
	cc      []byte

	// The client (device.go) and the values it carries that capture.go
	// writes into the session: the user agent as sent (cut to maxUACopy
	// bytes), whether the consent cookie is present, and the captured
	// values (their bytes in capBuf).
	ua       []byte
	dev      *wire.Device // the client's device, once Plugin.device made it
	devKnown bool
	consent  bool
	caps     [maxCaptures]captured
	ncap     int
	capBuf   []byte
	fwd      forwarded // the forwarded values of a view built for this request only
	body     []byte    // a self-service PATCH body, copied from the host
	bodySize uint32    // bytes of a self-service PATCH body the host holds so far

	// Request header writes (see forward): the client's map, the headers
	// to add, and the serialized result.
	single  bool
	raw     []byte
	addLens []byte // the queued headers (stream.add)
	addData []byte
	nadd    uint32
	ser     []byte
	gen     []byte
	idText  []byte
	assert  []byte
	ctxBuf  []byte
	a       wire.Assertion
}

func (s *stream) reset(id uint32, p *Plugin) {
	s.id, s.p = id, p
	s.claims = wire.Claims{}
	s.verified, s.minted, s.dead, s.relogged, s.replied, s.headerMode, s.eos = false, false, false, false, false, false, false
	s.tok, s.newToken, s.upToken = s.tok[:0], s.newToken[:0], s.upToken[:0]
	s.site, s.self, s.selfKey, s.waiting, s.entry, s.minVersion = nil, selfNone, s.selfKey[:0], nil, nil, 0
	s.host, s.path, s.scheme, s.origin, s.hasOrigin, s.crossSite = s.host[:0], s.path[:0], s.scheme[:0], s.origin[:0], false, false
	s.ncand, s.hasHint, s.rm = 0, false, s.rm[:0]
	s.written, s.hintOut, s.cc = 0, s.hintOut[:0], s.cc[:0]
	s.ua, s.dev, s.devKnown, s.consent, s.ncap, s.capBuf = s.ua[:0], nil, false, false, 0, s.capBuf[:0]
	s.bodySize = 0
	s.single = p.cfg == nil || p.cfg.SingleHeaderWrites
	s.raw, s.addLens, s.addData, s.nadd = s.raw[:0], s.addLens[:0], s.addData[:0], 0
}

// addCandidate keeps a token-shaped value for verification. Values of the
// wrong length cannot verify, so they are dropped without further work.
func (s *stream) addCandidate(v []byte) {
	if len(v) == wire.TokenLen && s.ncand < maxCandidates {
		copy(s.cands[s.ncand][:], v)
		s.ncand++
	}
}

// addHint keeps the first hint-shaped value.
func (s *stream) addHint(v []byte) {
	if len(v) == wire.HintLen && !s.hasHint {
		copy(s.hint[:], v)
		s.hasHint = true
	}
}

// scanCookies finds every session cookie and the consistency hint in one
// cookie header value ("a=1; name=TOKEN; namev=HINT"). Malformed pieces
// are skipped.
func (s *stream) scanCookies(v []byte, cfg *config.Config) {
	for len(v) > 0 {
		var part []byte
		if i := indexByte(v, ';'); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, nil
		}
		// No trim of the whole part: the name and the value are trimmed.
		eq := indexByte(part, '=')
		if eq < 0 {
			continue
		}
		name := trimSpace(part[:eq])
		val := trimSpace(part[eq+1:])
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		// Comparisons by hand: a switch on string(name) converts it (a
		// runtime call per cookie in a Go wasm guest).
		switch {
		case equalString(name, cfg.Cookie.Name):
			s.addCandidate(val)
		case equalString(name, cfg.HintCookie):
			s.addHint(val)
		case cfg.ConsentCookie != "" && equalString(name, cfg.ConsentCookie):
			s.consent = true
		case cfg.Capture.Cookies:
			s.captureCookie(name, val, &cfg.Capture)
		}
	}
}

// The request header names the header loop looks for. Pseudo-headers are
// lower case from every host; folding them too costs nothing (':' has no
// case bit set in the mask).
var (
	namePath         = newFoldName(":path")
	nameCookie       = newFoldName("cookie")
	nameOrigin       = newFoldName("origin")
	nameMethod       = newFoldName(":method")
	nameScheme       = newFoldName(":scheme")
	nameAuthority    = newFoldName(":authority")
	nameUserAgent    = newFoldName("user-agent")
	nameSecFetchSite = newFoldName("sec-fetch-site")
)

func nowSeconds(ns int64) int64 { return ns / 1e9 }

// stripped reports whether a request header is removed before the request
// goes upstream: x-session-* in any spelling, and the token and hint
// request headers (read first).
func (p *Plugin) stripped(k []byte) bool {
	return isSessionHeader(k) || p.cfg.TokenRequest != "" && (equalHeader(k, p.cfg.TokenRequest) || equalHeader(k, p.cfg.HintRequest))
}

func (p *Plugin) onRequestHeaders(vm *VM, s *stream, eos bool) abi.Action {
	p.counters.Requests++
	nowNs := abi.NowNanos()
	now := nowSeconds(nowNs)
	s.nowMs = nowNs / 1e6
	s.eos = eos
	b, st := abi.GetHeaderMapPairs(abi.MapRequestHeaders)
	if st != abi.StatusOK {
		// Without the headers the spoofed x-session-* ones cannot be
		// stripped either: refuse rather than forward them.
		logf(abi.LogError, "cannot read request headers")
		return p.reply(s, 500, "sessionedge_headers", nil)
	}
	cfg := p.cfg
	var method []byte
	n, off := pairsStart(b)
	malformed := n < 0
	for i := 0; i < n; i++ {
		kl, vl := pairLens(b, i)
		if !pairFits(b, off, kl, vl) {
			malformed = true
			break
		}
		k, v := b[off:off+kl], b[off+kl+1:off+kl+1+vl]
		off += kl + vl + 2
		if len(k) == 0 {
			continue
		}
		if cfg.TokenRequest != "" {
			if equalHeader(k, cfg.TokenRequest) {
				s.headerMode = true
				s.addCandidate(trimSpace(v))
				s.rm = append(append(s.rm, k...), 0)
				continue
			}
			if equalHeader(k, cfg.HintRequest) {
				s.addHint(trimSpace(v))
				s.rm = append(append(s.rm, k...), 0)
				continue
			}
		}
		// Dispatch on the name's length first: most names are compared
		// with nothing (each comparison is several wasm instructions per
		// byte in a Go guest).
		switch len(k) {
		case 5:
			if equalFoldName(k, &namePath) {
				s.path = append(s.path[:0], v...)
				continue
			}
		case 6:
			if equalFoldName(k, &nameCookie) {
				s.scanCookies(v, cfg)
				continue
			}
			if equalFoldName(k, &nameOrigin) {
				s.origin = append(s.origin[:0], trimSpace(v)...)
				s.hasOrigin = true
				continue
			}
		case 7:
			if equalFoldName(k, &nameMethod) {
				method = append(s.tmp[:0], v...)
				continue
			}
			if equalFoldName(k, &nameScheme) {
				s.scheme = append(s.scheme[:0], v...)
				continue
			}
		case 10:
			if equalFoldName(k, &nameAuthority) {
				s.host = append(s.host[:0], v...)
				continue
			}
			if equalFoldName(k, &nameUserAgent) {
				s.ua = append(s.ua[:0], v[:min(len(v), maxUACopy)]...)
				continue
			}
		case 14:
			if equalFoldName(k, &nameSecFetchSite) {
				s.crossSite = !sameSiteFetch(v)
				continue
			}
		}
		if isSessionHeader(k) {
			s.rm = append(append(s.rm, k...), 0)
		}
	}
	if malformed || off != len(b) {
		// A map we cannot parse whole cannot be rewritten whole either.
		logf(abi.LogWarn, "malformed request header map from the host")
		s.single = true
	}
	if s.single {
		s.removeAll(abi.MapRequestHeaders)
	} else {
		s.raw = append(s.raw[:0], b...) // b is valid only until the next getter
	}
	s.site = p.site(s.host)
	s.classifySelf(cfg.SelfServicePrefix, method)
	if cfg.Capture.Query && s.self == selfNone {
		if i := bytes.IndexByte(s.path, '?'); i >= 0 {
			s.scanQuery(s.path[i+1:], &cfg.Capture)
		}
	}
	switch s.self {
	case selfNotFound:
		return p.replyError(s, 404, "not_found", "no such self-service endpoint")
	case selfBadMethod:
		return p.replyError(s, 405, "method_not_allowed", "method not allowed here")
	case selfPatch, selfDelete, selfSessions, selfRevoke:
		if p.crossSite(s) {
			p.counters.CrossSite++
			return p.replyError(s, 403, "forbidden", "cross-site requests cannot change the session")
		}
	}

	switch p.resolve(s, now) {
	case resLogout:
		return p.startLogout(s, now)
	case resNone:
		return p.noToken(s, now)
	case resFetch:
		if s.self.presents() {
			break // the call presents the token; the origin checks its generation
		}
		if p.startFetch(s) {
			return p.pause(s)
		}
		return p.degrade(s)
	}
	return p.settled(s, now)
}

// removeAll removes the queued header names (s.rm) from map mt.
func (s *stream) removeAll(mt abi.MapType) {
	for rm := s.rm; len(rm) > 0; {
		i := bytes.IndexByte(rm, 0)
		abi.RemoveHeader(mt, rm[:i])
		rm = rm[i+1:]
	}
}

// pause holds the request while the origin answers. Spoofed headers are
// stripped at once: should the host give up on the paused stream and
// forward it anyway, they must not reach the upstream.
func (p *Plugin) pause(s *stream) abi.Action {
	if !s.single {
		s.removeAll(abi.MapRequestHeaders)
	}
	return abi.ActionPause
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
	case string(rest) == "sessions":
		switch string(method) {
		case "GET", "HEAD":
			s.self = selfSessions
		default:
			s.self = selfBadMethod
		}
	case string(rest) == "sessions/others":
		if string(method) == "DELETE" {
			s.self = selfRevoke
		} else {
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

// resolution is what resolve found.
type resolution uint8

const (
	resOK     resolution = iota // a valid token and a cached view at its generation (s.entry)
	resFetch                    // a valid token whose view must come from the origin
	resLogout                   // an idle-expired customer token: soft logout through the origin
	resNone                     // no usable token
)

// resolve finds the session of the request: a verified token (from the
// cache or by HMAC), checked against its deadlines and against the cached
// view's generation. The view serves the token only at the same
// generation: a cached view of a newer generation (or an ended session)
// means the token is dead; an older view must be fetched again.
func (p *Plugin) resolve(s *stream, now int64) resolution {
	kr := p.cfg.Keyring
	for i := 0; i < s.ncand; i++ {
		tok := s.cands[i][:]
		var cl wire.Claims
		var err error
		if t := p.tokens.lookup(tok); t != nil {
			p.counters.CacheHits++
			if t.dead {
				p.counters.Rejected++
				s.dead = true
				continue
			}
			cl = t.claims
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
		e := p.sessions.get(cl.ID) // a second sight: promoted from probation
		if e != nil && (e.sess.Ended != 0 || e.sess.Generation > cl.Generation) {
			p.counters.Rejected++
			s.dead = true
			continue
		}
		s.tok = append(s.tok[:0], tok...)
		if err == wire.ErrTokenIdleExpired {
			p.counters.IdleActions++
			switch p.cfg.Kinds[cl.Kind].OnIdle {
			case config.IdleSoftLogout:
				s.claims = cl
				return resLogout
			case config.IdleEnd:
				// The session is over; the origin ends it on its own idle
				// timer. The client starts over.
				return resNone
			}
		}
		s.claims, s.verified = cl, true
		p.maybeReissue(s, now)
		if e == nil || e.sess.Generation < cl.Generation {
			// Not cached, or cached before the login or logout that made
			// this token: the view must come from the origin.
			p.checkHint(s, nil)
			return resFetch
		}
		s.entry = e
		if e.want > e.sess.Version {
			s.minVersion = e.want // the app wrote a newer version through this VM
			return resFetch
		}
		if p.cfg.MaxStale > 0 && p.stale && s.nowMs-e.checked > p.cfg.MaxStale.Milliseconds() {
			p.counters.StaleFetches++
			p.checkHint(s, nil)
			return resFetch
		}
		if s.hasHint && p.checkHint(s, e) {
			p.counters.HintFetches++
			return resFetch
		}
		return resOK
	}
	return resNone
}

// checkHint reads the request's consistency hint: when it claims a version
// newer than the cached entry (or there is none), and verifies, the fetch
// must return at least that version. The HMAC is paid only then.
func (p *Plugin) checkHint(s *stream, e *entry) bool {
	if !s.hasHint {
		return false
	}
	v, ok := wire.PeekHintVersion(s.hint[:])
	if !ok || e != nil && (v <= e.sess.Version || v <= e.hintSeen) {
		return false
	}
	v, err := p.cfg.Keyring.VerifyHint(s.hint[:], s.claims.ID, s.claims.Generation)
	if err != nil || e != nil && v <= e.sess.Version {
		return false
	}
	s.minVersion = v
	return true
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

// maybeReissue rolls the idle deadline forward once less than half of the
// token's own idle window (idle deadline − issued at) is left, so most
// requests set no cookie and a session's idle timeout is whatever its
// token was issued with. The hard deadline never moves.
func (p *Plugin) maybeReissue(s *stream, now int64) {
	c := &s.claims
	window := c.IdleDeadline - c.IssuedAt
	if c.IdleDeadline == 0 || window <= 0 || c.IdleDeadline-now >= window/2 {
		return
	}
	next := capDeadline(now+window, c.HardDeadline)
	if next <= c.IdleDeadline {
		return // capped at the hard deadline already: nothing to gain
	}
	c.IssuedAt, c.IdleDeadline = now, next
	p.counters.Reissued++
	p.issue(s)
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

// noToken handles a request without a usable token: a new anonymous
// session, except that a self-service request whose token was refused gets
// 401 (with the new session's cookie), and paths under mint.skipPaths get
// no session at all.
func (p *Plugin) noToken(s *stream, now int64) abi.Action {
	s.verified, s.entry = false, nil
	if s.dead && s.self != selfNone {
		p.mint(s, now)
		return p.replyError(s, 401, "unauthorized", "the session token is no longer valid")
	}
	if s.self == selfNone && p.skipMint(s.path) {
		p.counters.Unminted++
		return p.forward(s)
	}
	p.mint(s, now)
	return p.settled(s, now)
}

// skipMint reports whether path lies under one of mint.skipPaths.
func (p *Plugin) skipMint(path []byte) bool {
	for _, prefix := range p.cfg.SkipMint {
		if bytes.HasPrefix(path, []byte(prefix)) {
			return true
		}
	}
	return false
}

// mint starts a new anonymous session, locally. It costs the origin
// nothing: the session is reported (and stored there) only when its token
// comes back, so clients that never return one (bots, cookie-less
// crawlers) leave no trace but a probation entry in this VM's cache.
func (p *Plugin) mint(s *stream, now int64) {
	s.verified, s.entry = false, nil
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
		s.claims.HardDeadline = now + int64(pol.Hard/config.Second)
	}
	if pol.Idle > 0 {
		s.claims.IdleDeadline = capDeadline(now+int64(pol.Idle/config.Second), s.claims.HardDeadline)
	}
	s.minted = true
	p.counters.Minted++
	p.issue(s)
	sess := &wire.Session{ID: id, Kind: wire.KindAnonymous, Generation: 1, Created: now * 1000, LastSeen: now * 1000,
		IdleDeadline: s.claims.IdleDeadline * 1000, HardDeadline: s.claims.HardDeadline * 1000}
	setDefaults(sess, s.site)
	s.entry = p.sessions.put(sess, stateLocal, false)
	s.entry.checked = s.nowMs
}

// settled continues a request once its session is known (s.entry; nil when
// the context is unavailable): a self-service answer or write, or the
// forwarded headers.
func (p *Plugin) settled(s *stream, now int64) abi.Action {
	var view *forwarded
	if s.ncap > 0 && s.self == selfNone && s.entry != nil {
		view = p.applyCaptures(s) // may replace s.entry
	}
	if e := s.entry; e != nil && s.verified && e.touched != p.touches.epoch {
		// Activity of a session whose token came back; a session minted for
		// this request is not reported until then.
		e.touched = p.touches.epoch
		p.addTouch(s, e)
	}
	switch s.self {
	case selfSessions:
		if !s.verified {
			return p.replyError(s, 401, "unauthorized", "a valid session token is required")
		}
		return p.startPeers(s)
	case selfPatch, selfDelete, selfRevoke:
		if !s.verified {
			return p.replyError(s, 401, "unauthorized", "a valid session token is required to change the context")
		}
		if s.relogged {
			return p.replyError(s, 401, "unauthorized", "the session expired and was logged out; the change was not applied")
		}
		switch s.self {
		case selfDelete:
			return p.startDelete(s)
		case selfRevoke:
			return p.startPeers(s)
		}
		if s.eos {
			return p.replyError(s, 400, "invalid_input", "PATCH context needs a JSON body")
		}
		return abi.ActionPause // wait for the body in onRequestBody
	case selfGet:
		if s.entry == nil {
			return p.degrade(s)
		}
		return p.replyView(s, s.entry)
	}
	if s.entry == nil {
		return p.degrade(s)
	}
	status := statusOK
	if s.entry.state != stateOrigin {
		status = statusNew
	}
	if view != nil {
		p.addValues(s, view, s.entry.sess.Version, status)
	} else {
		p.addForwarded(s, s.entry, s.site, status)
	}
	return p.forward(s)
}

// degrade handles a session whose context is unavailable: 503 when
// fail-closed, else forward what the token says.
func (p *Plugin) degrade(s *stream) abi.Action {
	p.metricAdd(p.metrics.degraded, 1)
	if p.cfg.FailClosed {
		p.counters.FailClosed++
		return p.replyError(s, 503, "unavailable", "session context unavailable")
	}
	p.counters.Degraded++
	if s.self != selfNone {
		return p.replyError(s, 503, "unavailable", "session context unavailable")
	}
	if s.claims.Kind.Valid() {
		p.addDegraded(s, s.site)
		if s.verified {
			p.addTouch(s, nil)
		}
	} else {
		s.add(hdrStatus, statusDegradedBytes)
	}
	return p.forward(s)
}
