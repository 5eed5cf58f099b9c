package filter

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// Edge-derived attributes (docs/filter.md, "Captured attributes"): the
// values of configured query parameters and cookies are written into the
// public namespace under their names on the request where they appear.
//
// Scanning costs time linear in the query and cookie headers and allocates
// nothing: values are copied into a buffer of the stream, at most
// capture.maxCount of them, each at most capture.maxValueLen bytes. A
// request that carries no configured name, or only values the session
// already holds, costs no allocation and no host call.

// maxCaptures bounds capture.maxCount.
const maxCaptures = 64

// captured is one value a request carries: the index of its name in
// config.Capture.Names and where the value lies in stream.capBuf.
type captured struct {
	name       uint8
	fromQuery  bool
	start, end int32
}

// addCapture keeps value v of name i, unless the request already gave a
// value for it: the first wins, except that a query parameter replaces a
// cookie of the same name. New names stop at maxCount.
func (s *stream) addCapture(i int, v []byte, fromQuery bool, cp *config.Capture) {
	for j := 0; j < s.ncap; j++ {
		c := &s.caps[j]
		if int(c.name) != i {
			continue
		}
		if fromQuery && !c.fromQuery {
			c.start = int32(len(s.capBuf))
			s.capBuf = append(s.capBuf, v...)
			c.end, c.fromQuery = int32(len(s.capBuf)), true
		}
		return
	}
	if s.ncap >= cp.MaxCount || s.ncap >= maxCaptures {
		return
	}
	start := int32(len(s.capBuf))
	s.capBuf = append(s.capBuf, v...)
	s.caps[s.ncap] = captured{name: uint8(i), fromQuery: fromQuery, start: start, end: int32(len(s.capBuf))}
	s.ncap++
}

// captureValue reports whether v may be captured: 1 to maxValueLen bytes
// of valid UTF-8.
func captureValue(v []byte, cp *config.Capture) bool {
	return len(v) > 0 && len(v) <= cp.MaxValueLen && utf8.Valid(v)
}

// captureName returns the index of the configured name n of the wanted
// kind (query parameter or cookie), or -1.
func captureName(n []byte, cp *config.Capture, query bool) int {
	for i := range cp.Names {
		c := &cp.Names[i]
		if len(c.Name) == len(n) && (query && c.Query || !query && c.Cookie) && c.Name == string(n) {
			return i
		}
	}
	return -1
}

// captureCookie keeps a cookie whose name is configured.
func (s *stream) captureCookie(name, val []byte, cp *config.Capture) {
	if i := captureName(name, cp, false); i >= 0 && captureValue(val, cp) {
		s.addCapture(i, val, false, cp)
	}
}

// scanQuery captures the configured parameters of query q (what follows
// '?' in the path). Names are compared as sent; values are
// percent-decoded, '+' read as a space. A value that does not decode, is
// not valid UTF-8 or is longer than maxValueLen bytes once decoded is
// skipped. The work is linear in len(q).
func (s *stream) scanQuery(q []byte, cp *config.Capture) {
	for len(q) > 0 {
		var part []byte
		part, q = cutByte(q, '&')
		name, val := part, []byte(nil)
		if i := bytes.IndexByte(part, '='); i >= 0 {
			name, val = part[:i], part[i+1:]
		}
		i := captureName(name, cp, true)
		if i < 0 {
			continue
		}
		// A decoded byte takes at most three bytes of input: a longer
		// value cannot fit, and is not even decoded.
		if len(val) > 3*cp.MaxValueLen {
			continue
		}
		mark := len(s.capBuf)
		var ok bool
		s.capBuf, ok = appendQueryUnescape(s.capBuf, val)
		v := s.capBuf[mark:]
		s.capBuf = s.capBuf[:mark]
		if ok && captureValue(v, cp) {
			// addCapture appends the value again from the buffer's spare
			// capacity, which v already holds: copy within the buffer.
			s.addCapture(i, v, true, cp)
		}
	}
}

func cutByte(b []byte, c byte) (before, after []byte) {
	if i := bytes.IndexByte(b, c); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// appendQueryUnescape appends the decoded form of a query value: %HH is
// the byte HH, '+' a space. ok is false for a malformed escape.
func appendQueryUnescape(dst, v []byte) ([]byte, bool) {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '+':
			dst = append(dst, ' ')
		case '%':
			if i+2 >= len(v) {
				return dst, false
			}
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if !ok1 || !ok2 {
				return dst, false
			}
			dst = append(dst, hi<<4|lo)
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// applyCaptures writes the request's captured values into the public
// namespace of its session (s.entry), leaving out tracking names when the
// request carries the consent cookie. Values the session already holds
// change nothing and cost nothing. Otherwise:
//   - a session the origin may not know yet (minted here, or unknown to
//     the origin) is updated in the cache; its touch reports carry the
//     values to the origin (Touch.Init). Once its token came back, the
//     values are also written as for a stored session, with
//     X-Session-Init, since the origin may have created the session from
//     an earlier report (which it would not apply Init from again);
//   - a stored session is forwarded with the values at once (the returned
//     view, built for this request only), and the values are written to
//     the origin with the client's token without holding the request; the
//     origin's answer replaces the cached copy.
func (p *Plugin) applyCaptures(s *stream) *forwarded {
	cp := &p.cfg.Capture
	e := s.entry
	pub := e.sess.Attrs[wire.NamespacePublic]
	diff := 0
	for i := 0; i < s.ncap; i++ {
		c := &s.caps[i]
		n := &cp.Names[c.name]
		if n.Tracking && s.consent {
			c.end = -1 // left out: the shopper declined tracking
			continue
		}
		if v, ok := pub.Get(n.Name); ok && v.Type == wire.TypeText && v.Text == string(s.capBuf[c.start:c.end]) {
			c.end = -1 // the session holds it already
			continue
		}
		diff++
	}
	if diff == 0 {
		return nil
	}
	next := e.sess.Clone()
	b := append(p.capBody[:0], `{"public":{`...)
	first := true
	for i := 0; i < s.ncap; i++ {
		c := &s.caps[i]
		if c.end < 0 {
			continue
		}
		name, v := cp.Names[c.name].Name, string(s.capBuf[c.start:c.end])
		next.Attrs[wire.NamespacePublic] = next.Attrs[wire.NamespacePublic].With(name, wire.Text(v))
		if !first {
			b = append(b, ',')
		}
		first = false
		b = wire.AppendValueJSON(append(wire.AppendStringJSON(b, name), ':'), wire.Text(v))
	}
	p.capBody = append(b, "}}"...)
	if err := p.cfg.Limits.ValidateSession(next); err != nil {
		p.counters.CapturesRefused++
		return nil
	}
	p.counters.Captured++
	if e.state != stateOrigin {
		s.entry = p.putSession(next, e.state, e.prot)
		if s.minted {
			p.publishMinted(s, next)
		}
		p.startCaptureWrite(s) // only once the token came back
		return nil
	}
	p.startCaptureWrite(s)
	p.scratch = s.fwd.build(next, s.site, s.consent, p.cfg, p.scratch)
	return &s.fwd
}

// Captured values across the VMs of a proxy. A minted session costs the
// origin nothing until its token comes back, so its captured values live
// in the cache of the VM that minted it; the proxy may send the next
// request to another VM, which learns of the session from the origin's
// 404 and would report (and forward) it with the site's defaults only. So
// the minting VM publishes what it applied to the session (its
// Touch.Init) in shared data, and a VM that resolves an uncached
// anonymous generation-1 token reads it, once, on that cold path (the
// fetch's 404, a self-service write that may create the session).
//
// Shared data has neither delete nor expiry: the records live in a fixed
// ring of mintedSlots keys, the slot chosen by the session id, each at
// most maxMintedRecord bytes (about 8 MiB in all, a few hundred KiB at the
// default capture limits). A later captured mint whose id falls on the
// same slot replaces the record: the earlier session's values are then
// lost if its token comes back through another VM before the minting VM
// reports it, as without the ring. A record names its session, so a
// reader never takes another session's values.
const (
	mintedSlots     = 4096
	maxMintedRecord = 2048
)

// mintedKey returns the shared-data key of the ring slot of session id.
func (p *Plugin) mintedKey(id *wire.ID) string {
	return p.mintedPrefix + strconv.FormatUint(idKey(id)%mintedSlots, 10)
}

// publishMinted publishes what this VM applied to the session it minted
// for the stream (sess, with its captured values): a one-touch report
// (wire.AppendTouches) with its Init.
func (p *Plugin) publishMinted(s *stream, sess *wire.Session) {
	if p.sync.solo {
		return // no shared data
	}
	t := [1]wire.Touch{{ID: sess.ID, Kind: s.claims.Kind, Generation: s.claims.Generation, LastSeen: s.nowMs,
		IdleDeadline: s.claims.IdleDeadline * 1000, HardDeadline: s.claims.HardDeadline * 1000, Init: initOps(sess, s.site)}}
	p.scratch = wire.AppendTouches(p.scratch[:0], t[:])
	if len(p.scratch) > maxMintedRecord {
		return
	}
	abi.SetSharedData(p.mintedKey(&sess.ID), p.scratch, 0)
}

// mintedInit returns what the VM that minted the session of cl published
// about it (its Touch.Init), or nil. Only an edge-minted token (anonymous,
// generation 1) has one.
func (p *Plugin) mintedInit(cl *wire.Claims) []wire.Op {
	if cl.Kind != wire.KindAnonymous || cl.Generation != 1 || p.sync.solo {
		return nil
	}
	b, _, st := abi.GetSharedData(p.mintedKey(&cl.ID))
	if st != abi.StatusOK {
		return nil
	}
	ts, err := wire.DecodeTouchesLimits(b, nil, &p.cfg.Limits)
	if err != nil || len(ts) != 1 || ts[0].ID != cl.ID || ts[0].Kind != wire.KindAnonymous || ts[0].Generation != 1 {
		return nil // another session's record, or none
	}
	return ts[0].Init
}

// withMintedInit returns sess (a session this VM builds for an edge-minted
// token the origin has not heard of) with what the minting VM applied to
// it: the site's fields, trackingAllowed and public attributes of its
// published Init. sess itself when there is nothing, or the result would
// pass the limits.
func (p *Plugin) withMintedInit(sess *wire.Session, cl *wire.Claims) *wire.Session {
	init := p.mintedInit(cl)
	if len(init) == 0 {
		return sess
	}
	next := *sess
	for _, op := range init {
		switch {
		case op.Code == wire.OpSetField && (op.Field == wire.FieldSiteCode || op.Field == wire.FieldCurrency ||
			op.Field == wire.FieldTargetLocation || op.Field == wire.FieldLocale || op.Field == wire.FieldTrackingAllowed):
			next.Fields[op.Field] = op.Value
		case op.Code == wire.OpSetAttr && op.NS == wire.NamespacePublic:
			next.Attrs[wire.NamespacePublic] = next.Attrs[wire.NamespacePublic].With(op.Key, op.Value)
		}
	}
	if p.cfg.Limits.ValidateSession(&next) != nil {
		return sess
	}
	return &next
}

// startCaptureWrite sends the captured values (p.capBody) of a stored
// session to the origin with the client's token. Nothing waits for it: a
// failure costs the request nothing, and the values are written again when
// they next differ. One write per session is in flight at a time, and none
// while the circuit breaker is open.
func (p *Plugin) startCaptureWrite(s *stream) {
	if !s.verified || len(s.tok) == 0 || p.breaker.open || p.captureWrites[s.claims.ID] {
		return
	}
	c := &call{kind: callCapture, id: s.claims.ID, gen: s.claims.Generation}
	if mayCreate(s) {
		c.init = p.initHeader(s)
	}
	if p.send("PATCH", p.sessionPath(s.claims.ID, "/context"), "application/json", p.capBody, s.tok, c, s.id) {
		p.captureWrites[c.id] = true
		p.counters.CaptureWrites++
	}
}

// captureWritten takes the origin's answer to a capture write: the
// session it returns replaces an older cached copy of the same generation,
// or one the origin had not vouched for.
func (p *Plugin) captureWritten(c *call, status int, body []byte, nowMs int64) {
	delete(p.captureWrites, c.id)
	if status != 200 {
		logf(abi.LogWarn, "captured attributes not stored by the origin (status "+strconv.Itoa(status)+")")
		return
	}
	sess, err := p.decodeOriginSession(c.id, body)
	if err != nil || sess.Ended != 0 || c.stale {
		return
	}
	if e := p.sessions.peek(c.id); e != nil && e.sess.Generation == sess.Generation && (e.state != stateOrigin || e.sess.Version < sess.Version) {
		ne := p.putSession(sess, stateOrigin, e.prot)
		ne.checked = nowMs
	}
}

// appendSegment appends the segment of view v: wire.AppendSegment over its
// site, currency, locale and location, or, when capture.segment names
// values the view holds in public (and the request does not carry the
// consent cookie), the same hash over those fields followed by
// "\x00name=value" for each of them in configuration order.
func appendSegment(dst []byte, v *wire.Session, cp *config.Capture, consent bool) []byte {
	if consent || len(cp.Segment) == 0 {
		return wire.AppendSegment(dst, v)
	}
	pub := v.Attrs[wire.NamespacePublic]
	var in []byte
	for _, i := range cp.Segment {
		name := cp.Names[i].Name
		val, ok := pub.Get(name)
		if !ok || val.Type != wire.TypeText {
			continue
		}
		if in == nil {
			in = append(in, v.Fields[wire.FieldSiteCode].Text...)
			in = append(append(in, 0), v.Fields[wire.FieldCurrency].Text...)
			in = append(append(in, 0), v.Fields[wire.FieldLocale].Text...)
			in = append(append(in, 0), v.Fields[wire.FieldTargetLocation].Text...)
		}
		in = append(append(in, 0), name...)
		in = append(append(in, '='), val.Text...)
	}
	if in == nil {
		return wire.AppendSegment(dst, v)
	}
	sum := wire.Sum256(in)
	const digits = "0123456789abcdef"
	for _, c := range sum[:wire.SegmentLen/2] {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}
