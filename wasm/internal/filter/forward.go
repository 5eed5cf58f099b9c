package filter

import (
	"encoding/binary"
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// The headers forwarded upstream (docs/architecture.md lists them). Every
// x-session-* header the client sent is removed before these are added.
const (
	hdrID        = "x-session-id"
	hdrKind      = "x-session-kind"
	hdrCustomer  = "x-session-customer"
	hdrVersion   = "x-session-version"
	hdrGen       = "x-session-generation"
	hdrContext   = "x-session-context"
	hdrSite      = "x-session-site"
	hdrCurrency  = "x-session-currency"
	hdrLocation  = "x-session-location"
	hdrLocale    = "x-session-locale"
	hdrCart      = "x-session-cart"
	hdrTracking  = "x-session-tracking"
	hdrSegment   = "x-session-segment"
	hdrStatus    = "x-session-context-status"
	hdrToken     = "x-session-token"
	hdrAssertion = "x-session-assertion"
)

// The forwarded values computed once per cached entry and site, in the
// order of fwdNames.
const (
	fwdID = iota
	fwdCustomer
	fwdVersion
	fwdContext
	fwdSite
	fwdCurrency
	fwdLocation
	fwdLocale
	fwdCart
	fwdTracking
	fwdSegment
	numFwd
)

var fwdNames = [numFwd]string{hdrID, hdrCustomer, hdrVersion, hdrContext, hdrSite, hdrCurrency, hdrLocation,
	hdrLocale, hdrCart, hdrTracking, hdrSegment}

// forwarded holds header values in one buffer; end[i] is where value i
// ends (it starts where value i-1 ended). An empty value is not sent.
// digest is the assertion keys' digest of the context value. lens and data
// are the non-empty values with their names serialized as a header map
// without its count (see stream.add), n pairs: a request in pairs mode
// copies them whole.
type forwarded struct {
	buf    []byte
	end    [numFwd]int32
	digest [16]byte
	lens   []byte
	data   []byte
	n      uint32

	// The claims headers (kind, generation, status) serialized the same
	// way for the last claims they were asked for: a cached entry serves
	// tokens of one kind and generation, so they are built once.
	claims           claimsKey
	claimsLens       []byte
	claimsData       []byte
	claimsSerialized bool
}

type claimsKey struct {
	kind   wire.Kind
	gen    uint32
	status string
}

func (f *forwarded) value(i int) []byte {
	start := int32(0)
	if i > 0 {
		start = f.end[i-1]
	}
	return f.buf[start:f.end[i]]
}

// withDefaults returns s with unset segment fields taken from site; s itself
// is returned when nothing is missing, since sessions are immutable values.
func withDefaults(s *wire.Session, site *config.Site) *wire.Session {
	defs := [...]struct {
		f wire.Field
		v string
	}{{wire.FieldSiteCode, site.SiteCode}, {wire.FieldCurrency, site.Currency},
		{wire.FieldTargetLocation, site.TargetLocation}, {wire.FieldLocale, site.Locale}}
	var out *wire.Session
	for _, d := range defs {
		if d.v != "" && s.Fields[d.f].IsZero() {
			if out == nil {
				out = s.Clone()
			}
			out.Fields[d.f] = wire.Text(d.v)
		}
	}
	if out == nil {
		return s
	}
	return out
}

// setDefaults sets the unset segment fields of s, a session the edge
// creates, from site: what the edge applies to a new session, which its
// reports carry to the origin (Touch.Init).
func setDefaults(s *wire.Session, site *config.Site) {
	if site == nil {
		return
	}
	for _, f := range [...]wire.Field{wire.FieldSiteCode, wire.FieldCurrency, wire.FieldTargetLocation, wire.FieldLocale} {
		if d := site.Default(f); d != "" && s.Fields[f].IsZero() {
			s.Fields[f] = wire.Text(d)
		}
	}
}

// build computes the forwarded values of session s for site, reusing f.buf.
// Values an app or a shopper can set are percent-encoded (appendPct), so
// every value is visible ASCII. With consent (the request carries the
// consent cookie) the view says trackingAllowed false and the segment
// leaves captured values out. The context is the forwarded view with the
// segment in it (wire.AppendForwardView).
func (f *forwarded) build(s *wire.Session, site *config.Site, consent bool, cfg *config.Config, scratch []byte) []byte {
	v := forwardView(s, site, consent)
	b := f.buf[:0]
	mark := func(i int) { f.end[i] = int32(len(b)) }
	var seg [wire.SegmentLen]byte
	appendSegment(seg[:0], v, &cfg.Capture, consent)
	b = s.ID.AppendText(b)
	mark(fwdID)
	b = appendPct(b, v.Fields[wire.FieldCustomerID].Text)
	mark(fwdCustomer)
	b = strconv.AppendUint(b, s.Version, 10)
	mark(fwdVersion)
	scratch = wire.AppendForwardView(scratch[:0], v, cfg.Forward, seg[:])
	b = wire.AppendBase64URL(b, scratch)
	mark(fwdContext)
	b = appendPct(b, v.Fields[wire.FieldSiteCode].Text)
	mark(fwdSite)
	b = appendPct(b, v.Fields[wire.FieldCurrency].Text)
	mark(fwdCurrency)
	b = appendPct(b, v.Fields[wire.FieldTargetLocation].Text)
	mark(fwdLocation)
	b = appendPct(b, v.Fields[wire.FieldLocale].Text)
	mark(fwdLocale)
	b = appendPct(b, v.Fields[wire.FieldCartID].Text)
	mark(fwdCart)
	if t := v.Fields[wire.FieldTrackingAllowed]; t.Type == wire.TypeBool {
		b = strconv.AppendBool(b, t.BoolValue())
	}
	mark(fwdTracking)
	b = append(b, seg[:]...)
	mark(fwdSegment)
	f.buf = b
	f.lens, f.data, f.n = f.lens[:0], f.data[:0], 0
	for i := 0; i < numFwd; i++ {
		if v := f.value(i); len(v) > 0 {
			f.lens, f.data = appendPair(f.lens, f.data, fwdNames[i], v)
			f.n++
		}
	}
	if cfg.Assertion != nil {
		f.digest = cfg.Assertion.ContextDigest(f.value(fwdContext))
	}
	return scratch
}

// forwardView returns s as forwarded for site: unset segment fields from
// the site's defaults, and trackingAllowed false when the request carries
// the consent cookie.
func forwardView(s *wire.Session, site *config.Site, consent bool) *wire.Session {
	v := withDefaults(s, site)
	if consent {
		if t := v.Fields[wire.FieldTrackingAllowed]; t.Type != wire.TypeBool || t.BoolValue() {
			if v == s {
				v = v.Clone()
			}
			v.Fields[wire.FieldTrackingAllowed] = wire.Bool(false)
		}
	}
	return v
}

// addForwarded adds the session headers of e (for site) and the per-request
// ones to the request of the effective stream: every value in fields mode,
// the context and its status in compact mode, and the signed assertion in
// both when assertion keys are configured.
func (p *Plugin) addForwarded(s *stream, e *entry, site *config.Site, status string) {
	if e.fwdSite != site || e.fwdConsent != s.consent || e.fwd.buf == nil {
		p.scratch = e.fwd.build(e.sess, site, s.consent, p.cfg, p.scratch)
		e.fwdSite, e.fwdConsent = site, s.consent
	}
	p.addValues(s, &e.fwd, e.sess.Version, status)
}

// addValues adds the forwarded values f of a session at version.
func (p *Plugin) addValues(s *stream, f *forwarded, version uint64, status string) {
	if p.cfg.Compact {
		s.add(hdrContext, f.value(fwdContext))
		s.add(hdrStatus, statusBytes(status))
	} else {
		if s.single {
			for i := 0; i < numFwd; i++ {
				if v := f.value(i); len(v) > 0 {
					s.add(fwdNames[i], v)
				}
			}
			p.addClaimsHeaders(s, status)
		} else {
			k := claimsKey{s.claims.Kind, s.claims.Generation, status}
			if !f.claimsSerialized || f.claims != k {
				s.gen = strconv.AppendUint(s.gen[:0], uint64(k.gen), 10)
				f.claimsLens, f.claimsData = appendPair(f.claimsLens[:0], f.claimsData[:0], hdrKind, kindBytes[k.kind])
				f.claimsLens, f.claimsData = appendPair(f.claimsLens, f.claimsData, hdrGen, s.gen)
				f.claimsLens, f.claimsData = appendPair(f.claimsLens, f.claimsData, hdrStatus, statusBytes(status))
				f.claims, f.claimsSerialized = k, true
			}
			s.addLens = append(append(s.addLens, f.lens...), f.claimsLens...)
			s.addData = append(append(s.addData, f.data...), f.claimsData...)
			s.nadd += f.n + 3
		}
	}
	if p.cfg.Assertion != nil {
		if status != statusOK {
			version = 0
		}
		p.addAssertion(s, status, version, &f.digest)
	}
}

// addAssertion signs what this request forwards: the token's session and
// generation, the view's version and digest, the request's authority and
// path. It costs one SipHash over those bytes.
func (p *Plugin) addAssertion(s *stream, status string, version uint64, digest *[16]byte) {
	s.a = wire.Assertion{Kind: s.claims.Kind, Status: assertStatus(status), ID: s.claims.ID,
		Generation: s.claims.Generation, Version: version, IssuedAt: s.nowMs, ContextDigest: *digest}
	s.assert = p.cfg.Assertion.AppendAssertion(s.assert[:0], &s.a, s.host, s.path)
	s.add(hdrAssertion, s.assert)
}

func assertStatus(status string) wire.AssertStatus {
	switch status {
	case statusNew:
		return wire.AssertNew
	case statusDegraded:
		return wire.AssertDegraded
	}
	return wire.AssertOK
}

// addClaimsHeaders adds the headers that come from the token: kind,
// generation and the context status.
func (p *Plugin) addClaimsHeaders(s *stream, status string) {
	s.add(hdrKind, kindBytes[s.claims.Kind])
	s.gen = strconv.AppendUint(s.gen[:0], uint64(s.claims.Generation), 10)
	s.add(hdrGen, s.gen)
	s.add(hdrStatus, statusBytes(status))
}

// addDegraded forwards what is known without the origin: id, kind,
// generation and the site defaults; in compact mode as a view built from
// the token.
func (p *Plugin) addDegraded(s *stream, site *config.Site) {
	var zero [16]byte
	digest := &zero
	if p.cfg.Compact {
		v := forwardView(&wire.Session{ID: s.claims.ID, Kind: s.claims.Kind, Generation: s.claims.Generation}, site, s.consent)
		var seg [wire.SegmentLen]byte
		wire.AppendSegment(seg[:0], v)
		p.scratch = wire.AppendForwardView(p.scratch[:0], v, p.cfg.Forward, seg[:])
		s.ctxBuf = wire.AppendBase64URL(s.ctxBuf[:0], p.scratch)
		s.add(hdrContext, s.ctxBuf)
		s.add(hdrStatus, statusDegradedBytes)
		if p.cfg.Assertion != nil {
			d := p.cfg.Assertion.ContextDigest(s.ctxBuf)
			digest = &d
		}
	} else {
		s.idText = s.claims.ID.AppendText(s.idText[:0])
		s.add(hdrID, s.idText)
		s.ctxBuf = s.ctxBuf[:0]
		for _, h := range [...]struct{ k, v string }{{hdrSite, site.SiteCode}, {hdrCurrency, site.Currency},
			{hdrLocation, site.TargetLocation}, {hdrLocale, site.Locale}} {
			if h.v != "" {
				start := len(s.ctxBuf)
				s.ctxBuf = appendPct(s.ctxBuf, h.v)
				s.add(h.k, s.ctxBuf[start:len(s.ctxBuf):len(s.ctxBuf)])
			}
		}
		if s.consent {
			s.add(hdrTracking, falseBytes)
		}
		p.addClaimsHeaders(s, statusDegraded)
	}
	if p.cfg.Assertion != nil {
		p.addAssertion(s, statusDegraded, 0, digest)
	}
}

// The values of x-session-context-status.
const (
	statusOK       = "ok"
	statusNew      = "new"
	statusDegraded = "degraded"
)

var (
	statusOKBytes       = []byte(statusOK)
	statusNewBytes      = []byte(statusNew)
	statusDegradedBytes = []byte(statusDegraded)
	falseBytes          = []byte("false")
	kindBytes           = [4][]byte{nil, []byte("anonymous"), []byte("customer"), []byte("shared")}
)

func statusBytes(s string) []byte {
	switch s {
	case statusNew:
		return statusNewBytes
	case statusDegraded:
		return statusDegradedBytes
	}
	return statusOKBytes
}

// add queues a forwarded request header; with single header writes it is
// added at once. Queued headers are kept serialized: their key and value
// lengths in s.addLens, the NUL-terminated key and value in s.addData, as
// in a header map, so forward copies them whole.
func (s *stream) add(key string, value []byte) {
	if s.single {
		abi.AddHeader(abi.MapRequestHeaders, key, value)
		return
	}
	s.addLens, s.addData = appendPair(s.addLens, s.addData, key, value)
	s.nadd++
}

// appendPair appends one pair of a header map: its lengths to lens, its
// NUL-terminated key and value to data.
func appendPair(lens, data []byte, key string, value []byte) ([]byte, []byte) {
	lens = binary.LittleEndian.AppendUint32(lens, uint32(len(key)))
	lens = binary.LittleEndian.AppendUint32(lens, uint32(len(value)))
	data = append(append(data, key...), 0)
	data = append(append(data, value...), 0)
	return lens, data
}

// forward writes the request headers and lets the request go upstream. In
// pairs mode the new map is the client's headers minus every stripped
// header (Plugin.stripped), plus the queued ones, set with one host call; if the host refuses
// it, the filter falls back to one call per header.
func (p *Plugin) forward(s *stream) abi.Action {
	if s.single || len(s.rm) == 0 && s.nadd == 0 {
		return abi.ActionContinue
	}
	var b []byte
	if len(s.rm) == 0 && len(s.raw) >= 4 {
		b = s.appendPairsFast()
	} else {
		b = s.appendPairsFiltered()
	}
	s.ser = b
	if st := abi.SetHeaderMapPairs(abi.MapRequestHeaders, b); st != abi.StatusOK {
		logf(abi.LogWarn, "proxy_set_header_map_pairs failed ("+st.Err().Error()+"); writing headers one by one")
		s.removeAll(abi.MapRequestHeaders)
		data := s.addData
		for i := 0; i < int(s.nadd); i++ {
			kl := int(binary.LittleEndian.Uint32(s.addLens[8*i:]))
			vl := int(binary.LittleEndian.Uint32(s.addLens[8*i+4:]))
			abi.AddHeader(abi.MapRequestHeaders, string(data[:kl]), data[kl+1:kl+1+vl])
			data = data[kl+vl+2:]
		}
	}
	return abi.ActionContinue
}

// appendPairsFast serializes the client's map plus the queued headers when
// the client sent no header to strip (the common case): the client's
// length table and data area are copied whole, with no per-pair work.
//
//	client:  | n | lengths (8n) | data |
//	result:  | n+k | lengths (8n) | lengths of the k added | data | added data |
func (s *stream) appendPairsFast() []byte {
	n := binary.LittleEndian.Uint32(s.raw)
	table := s.raw[4 : 4+8*int(n)]
	data := s.raw[4+8*int(n):]
	b := binary.LittleEndian.AppendUint32(s.ser[:0], n+s.nadd)
	b = append(b, table...)
	b = append(b, s.addLens...)
	b = append(b, data...)
	return append(b, s.addData...)
}

// appendPairsFiltered serializes the client's map without its stripped
// headers, plus the queued headers.
func (s *stream) appendPairsFiltered() []byte {
	n := int(s.nadd)
	it := abi.NewPairIter(s.raw)
	for it.Next() {
		if !s.p.stripped(it.Key()) {
			n++
		}
	}
	b := binary.LittleEndian.AppendUint32(s.ser[:0], uint32(n))
	it = abi.NewPairIter(s.raw)
	for it.Next() {
		if !s.p.stripped(it.Key()) {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(it.Key())))
			b = binary.LittleEndian.AppendUint32(b, uint32(len(it.Value())))
		}
	}
	b = append(b, s.addLens...)
	it = abi.NewPairIter(s.raw)
	for it.Next() {
		if !s.p.stripped(it.Key()) {
			b = append(append(b, it.Key()...), 0)
			b = append(append(b, it.Value()...), 0)
		}
	}
	return append(b, s.addData...)
}
