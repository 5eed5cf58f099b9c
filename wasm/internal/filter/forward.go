package filter

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// The headers forwarded upstream (/work/contracts.md). Every x-session-*
// header the client sent is removed before these are added.
const (
	hdrID       = "x-session-id"
	hdrKind     = "x-session-kind"
	hdrCustomer = "x-session-customer"
	hdrVersion  = "x-session-version"
	hdrGen      = "x-session-generation"
	hdrContext  = "x-session-context"
	hdrSite     = "x-session-site"
	hdrCurrency = "x-session-currency"
	hdrLocation = "x-session-location"
	hdrLocale   = "x-session-locale"
	hdrCart     = "x-session-cart"
	hdrTracking = "x-session-tracking"
	hdrSegment  = "x-session-segment"
	hdrStatus   = "x-session-context-status"
	hdrToken    = "x-session-token"
	hdrPrefix   = "x-session-"
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
type forwarded struct {
	buf []byte
	end [numFwd]int32
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

// build computes the forwarded values of session s for site, reusing f.buf.
func (f *forwarded) build(s *wire.Session, site *config.Site, namespaces uint8, scratch []byte) []byte {
	v := withDefaults(s, site)
	b := f.buf[:0]
	mark := func(i int) { f.end[i] = int32(len(b)) }
	b = s.ID.AppendText(b)
	mark(fwdID)
	b = append(b, v.Fields[wire.FieldCustomerID].Text...)
	mark(fwdCustomer)
	b = strconv.AppendUint(b, s.Version, 10)
	mark(fwdVersion)
	scratch = wire.AppendSessionView(scratch[:0], v, namespaces)
	b = base64.RawURLEncoding.AppendEncode(b, scratch)
	mark(fwdContext)
	b = appendSafe(b, v.Fields[wire.FieldSiteCode].Text)
	mark(fwdSite)
	b = appendSafe(b, v.Fields[wire.FieldCurrency].Text)
	mark(fwdCurrency)
	b = appendSafe(b, v.Fields[wire.FieldTargetLocation].Text)
	mark(fwdLocation)
	b = appendSafe(b, v.Fields[wire.FieldLocale].Text)
	mark(fwdLocale)
	b = appendSafe(b, v.Fields[wire.FieldCartID].Text)
	mark(fwdCart)
	if t := v.Fields[wire.FieldTrackingAllowed]; t.Type == wire.TypeBool {
		b = strconv.AppendBool(b, t.BoolValue())
	}
	mark(fwdTracking)
	b = appendSegment(b, v)
	mark(fwdSegment)
	f.buf = b
	return scratch
}

// appendSegment appends 16 hex characters of SHA-256 over
// "site\x00currency\x00locale\x00location", the value caches vary on.
func appendSegment(dst []byte, s *wire.Session) []byte {
	var in [4 * 64]byte
	b := in[:0]
	b = append(b, s.Fields[wire.FieldSiteCode].Text...)
	b = append(b, 0)
	b = append(b, s.Fields[wire.FieldCurrency].Text...)
	b = append(b, 0)
	b = append(b, s.Fields[wire.FieldLocale].Text...)
	b = append(b, 0)
	b = append(b, s.Fields[wire.FieldTargetLocation].Text...)
	sum := sha256.Sum256(b)
	// By hand: encoding/hex would link fmt into the module.
	const digits = "0123456789abcdef"
	for _, c := range sum[:8] {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}

// appendSafe appends s, replacing bytes that may not appear in a header
// value, so a value written through the origin API cannot split headers.
func appendSafe(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			c = '?'
		}
		dst = append(dst, c)
	}
	return dst
}

// addForwarded adds the session headers of e (for site) and the per-request
// ones to the request of the effective stream.
func (p *Plugin) addForwarded(s *stream, e *entry, site *config.Site, status string) {
	if e.fwdSite != site || e.fwd.buf == nil {
		p.scratch = e.fwd.build(e.sess, site, p.cfg.Forward, p.scratch)
		e.fwdSite = site
	}
	for i := 0; i < numFwd; i++ {
		if v := e.fwd.value(i); len(v) > 0 {
			s.add(fwdNames[i], v)
		}
	}
	p.addClaimsHeaders(s, status)
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
// generation and the site defaults.
func (p *Plugin) addDegraded(s *stream, site *config.Site) {
	s.idText = s.claims.ID.AppendText(s.idText[:0])
	s.add(hdrID, s.idText)
	for _, h := range [...]struct{ k, v string }{{hdrSite, site.SiteCode}, {hdrCurrency, site.Currency},
		{hdrLocation, site.TargetLocation}, {hdrLocale, site.Locale}} {
		if h.v != "" {
			s.add(h.k, []byte(h.v))
		}
	}
	p.addClaimsHeaders(s, statusDegraded)
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
// added at once.
func (s *stream) add(key string, value []byte) {
	if s.single {
		abi.AddHeader(abi.MapRequestHeaders, key, value)
		return
	}
	s.addKeys = append(s.addKeys, key)
	s.addVals = append(s.addVals, value)
}

// forward writes the request headers and lets the request go upstream. In
// pairs mode the new map is the client's headers minus every x-session-*
// header, plus the queued ones, set with one host call; if the host refuses
// it, the filter falls back to one call per header.
func (p *Plugin) forward(s *stream) abi.Action {
	if s.single {
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
		it := abi.NewPairIter(s.raw)
		for it.Next() {
			if hasPrefixFold(it.Key(), hdrPrefix) {
				abi.RemoveHeader(abi.MapRequestHeaders, it.Key())
			}
		}
		for i, k := range s.addKeys {
			abi.AddHeader(abi.MapRequestHeaders, k, s.addVals[i])
		}
	}
	return abi.ActionContinue
}

// appendPairsFast serializes the client's map plus the queued headers when
// the client sent no x-session-* header (the common case): the client's
// length table and data area are copied whole, with no per-pair work.
//
//	client:  | n | lengths (8n) | data |
//	result:  | n+k | lengths (8n) | lengths of the k added | data | added data |
func (s *stream) appendPairsFast() []byte {
	n := binary.LittleEndian.Uint32(s.raw)
	table := s.raw[4 : 4+8*int(n)]
	data := s.raw[4+8*int(n):]
	b := binary.LittleEndian.AppendUint32(s.ser[:0], n+uint32(len(s.addKeys)))
	b = append(b, table...)
	for i, k := range s.addKeys {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.addVals[i])))
	}
	b = append(b, data...)
	for i, k := range s.addKeys {
		b = append(append(b, k...), 0)
		b = append(append(b, s.addVals[i]...), 0)
	}
	return b
}

// appendPairsFiltered serializes the client's map without its x-session-*
// headers, plus the queued headers.
func (s *stream) appendPairsFiltered() []byte {
	n := len(s.addKeys)
	it := abi.NewPairIter(s.raw)
	for it.Next() {
		if !hasPrefixFold(it.Key(), hdrPrefix) {
			n++
		}
	}
	b := binary.LittleEndian.AppendUint32(s.ser[:0], uint32(n))
	it = abi.NewPairIter(s.raw)
	for it.Next() {
		if !hasPrefixFold(it.Key(), hdrPrefix) {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(it.Key())))
			b = binary.LittleEndian.AppendUint32(b, uint32(len(it.Value())))
		}
	}
	for i, k := range s.addKeys {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.addVals[i])))
	}
	it = abi.NewPairIter(s.raw)
	for it.Next() {
		if !hasPrefixFold(it.Key(), hdrPrefix) {
			b = append(append(b, it.Key()...), 0)
			b = append(append(b, it.Value()...), 0)
		}
	}
	for i, k := range s.addKeys {
		b = append(append(b, k...), 0)
		b = append(append(b, s.addVals[i]...), 0)
	}
	return b
}
