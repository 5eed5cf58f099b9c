package filter

import (
	"bytes"
	"unicode/utf8"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// The client's device (docs/filter.md, "Devices"): what the filter saw of
// the client, sent with every touch report and with a self-service write
// that may create the session. The origin keeps the first and the last
// one of each session, for the shopper's list of their sessions.

// maxUACopy is what a request's user agent costs the stream at most: a
// little more than wire.MaxDeviceText, so the cut can fall on a character
// boundary.
const maxUACopy = wire.MaxDeviceText + utf8.UTFMax

// propSourceAddress is the host property holding the client's address
// ("192.0.2.1:1234", "[2001:db8::1]:1234").
const propSourceAddress = "source\x00address"

// maxDevices bounds the devices remembered for touch reports; user agents
// repeat, so most reports share a few records.
const maxDevices = 4096

// device returns the device of the stream's client: its user agent (cut to
// wire.MaxDeviceText bytes at a character boundary, invalid UTF-8 replaced
// by '?'), its address cut to the configured prefix (read from the host
// only here, when a report needs it), and the site code of the request's
// host. Devices are shared: the same client costs one record. nil when
// nothing is known. The host is asked for the address once per request.
func (p *Plugin) device(s *stream) *wire.Device {
	if s.devKnown {
		return s.dev
	}
	s.dev, s.devKnown = p.newDevice(s), true
	return s.dev
}

func (p *Plugin) newDevice(s *stream) *wire.Device {
	k := appendUserAgent(p.devKey[:0], s.ua)
	uaLen := len(k)
	k = append(k, 0)
	if d := &p.cfg.Device; d.AddrV4 != 0 || d.AddrV6 != 0 {
		if addr, st := abi.GetProperty(propSourceAddress); st == abi.StatusOK {
			k, _ = appendAddrPrefix(k, addr, d.AddrV4, d.AddrV6)
		}
	}
	addrEnd := len(k)
	site := ""
	if s.site != nil {
		site = s.site.SiteCode
	}
	k = append(append(k, 0), site...)
	p.devKey = k
	if uaLen == 0 && addrEnd == uaLen+1 && site == "" {
		return nil
	}
	if dev := p.devices[string(k)]; dev != nil {
		return dev
	}
	if len(p.devices) >= maxDevices {
		clear(p.devices)
	}
	dev := &wire.Device{UserAgent: string(k[:uaLen]), Addr: string(k[uaLen+1 : addrEnd]), Site: site}
	p.devices[string(k)] = dev
	return dev
}

// appendUserAgent appends ua cut to wire.MaxDeviceText bytes at a
// character boundary; bytes that are not UTF-8 become '?', so the text
// always encodes.
func appendUserAgent(dst, ua []byte) []byte {
	n := 0
	for len(ua) > 0 {
		r, size := utf8.DecodeRune(ua)
		w := size
		if r == utf8.RuneError && size <= 1 {
			w = 1
		}
		if n+w > wire.MaxDeviceText {
			break
		}
		if r == utf8.RuneError && size <= 1 {
			dst = append(dst, '?')
		} else {
			dst = append(dst, ua[:size]...)
		}
		n += w
		ua = ua[size:]
	}
	return dst
}

// appendAddrPrefix appends the network of a source.address value
// ("192.0.2.1:1234", "[2001:db8::1]:1234", or an address without a port)
// cut to v4 or v6 bits, as "192.0.2.0/24" or "2001:db8:1200::/40". An
// IPv4-mapped IPv6 address counts as IPv4. ok is false, and dst unchanged,
// for anything else or a family configured to keep no address (0 bits).
func appendAddrPrefix(dst, addr []byte, v4, v6 int) ([]byte, bool) {
	var ip [16]byte
	host := addr
	switch {
	case len(addr) > 0 && addr[0] == '[':
		end := bytes.IndexByte(addr, ']')
		if end < 0 {
			return dst, false
		}
		host = addr[1:end]
	case countByte(addr, ':') == 1:
		host = addr[:bytes.IndexByte(addr, ':')]
	}
	if i := bytes.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // a zone
	}
	is4 := false
	if countByte(host, ':') == 0 {
		if !parseIPv4(host, ip[12:]) {
			return dst, false
		}
		is4 = true
	} else {
		if !parseIPv6(host, &ip) {
			return dst, false
		}
		is4 = ip == [16]byte{10: 0xff, 11: 0xff, 12: ip[12], 13: ip[13], 14: ip[14], 15: ip[15]}
	}
	if is4 {
		if v4 <= 0 {
			return dst, false
		}
		b := ip[12:]
		maskBits(b, v4)
		for i, x := range b {
			if i > 0 {
				dst = append(dst, '.')
			}
			dst = appendUint8(dst, x)
		}
		return appendUint8(append(dst, '/'), uint8(v4)), true
	}
	if v6 <= 0 {
		return dst, false
	}
	maskBits(ip[:], v6)
	dst = appendIPv6(dst, &ip)
	return appendUint8(append(dst, '/'), uint8(v6)), true
}

func countByte(b []byte, c byte) int {
	n := 0
	for _, x := range b {
		if x == c {
			n++
		}
	}
	return n
}

// maskBits clears every bit of b after the first bits.
func maskBits(b []byte, bits int) {
	for i := range b {
		switch {
		case bits >= 8:
			bits -= 8
		case bits <= 0:
			b[i] = 0
		default:
			b[i] &= byte(0xff << (8 - bits))
			bits = 0
		}
	}
}

func appendUint8(dst []byte, x uint8) []byte {
	if x >= 100 {
		dst = append(dst, '0'+x/100)
	}
	if x >= 10 {
		dst = append(dst, '0'+x/10%10)
	}
	return append(dst, '0'+x%10)
}

// parseIPv4 parses dotted decimal (four parts, 0–255, no leading zeros)
// into out (4 bytes).
func parseIPv4(s []byte, out []byte) bool {
	part, n, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || part > 3 {
				return false
			}
			out[part] = byte(n)
			part, n, digits = part+1, 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || digits > 0 && n == 0 {
			return false
		}
		n = n*10 + int(c-'0')
		digits++
		if n > 255 {
			return false
		}
	}
	return part == 4
}

// parseIPv6 parses an IPv6 address in RFC 4291 text (one "::" at most,
// an IPv4 tail allowed) into ip.
func parseIPv6(s []byte, ip *[16]byte) bool {
	*ip = [16]byte{}
	gap := -1 // byte offset of "::"
	i := 0
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		gap = 0
		s = s[2:]
		if len(s) == 0 {
			return true
		}
	}
	for len(s) > 0 {
		if i == 16 {
			return false
		}
		// An IPv4 tail takes the last four bytes.
		if dot := bytes.IndexByte(s, '.'); dot >= 0 && bytes.IndexByte(s, ':') < 0 {
			if i > 12 || !parseIPv4(s, ip[i:i+4]) {
				return false
			}
			i += 4
			s = nil
			break
		}
		n, digits := 0, 0
		for digits < len(s) && digits < 5 {
			v, ok := unhex(s[digits])
			if !ok {
				break
			}
			n = n<<4 | int(v)
			digits++
		}
		if digits == 0 || digits > 4 {
			return false
		}
		ip[i], ip[i+1] = byte(n>>8), byte(n)
		i += 2
		s = s[digits:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return false
		}
		s = s[1:]
		if s[0] == ':' {
			if gap >= 0 {
				return false
			}
			gap = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if gap < 0 {
		return i == 16
	}
	if i == 16 {
		return false // "::" must stand for at least one group
	}
	// Move what follows the gap to the end.
	n := i - gap
	copy(ip[16-n:], ip[gap:i])
	for j := gap; j < 16-n; j++ {
		ip[j] = 0
	}
	return true
}

// appendIPv6 appends ip in RFC 5952 form: lower-case hex, no leading
// zeros, the longest run of two or more zero groups (the first of equal
// runs) as "::".
func appendIPv6(dst []byte, ip *[16]byte) []byte {
	best, bestLen := -1, 1
	for i := 0; i < 8; {
		if ip[2*i] != 0 || ip[2*i+1] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && ip[2*j] == 0 && ip[2*j+1] == 0 {
			j++
		}
		if j-i > bestLen {
			best, bestLen = i, j-i
		}
		i = j
	}
	const digits = "0123456789abcdef"
	for i := 0; i < 8; i++ {
		if i == best {
			dst = append(dst, ':', ':')
			i += bestLen - 1
			continue
		}
		if i > 0 && i != best+bestLen {
			dst = append(dst, ':')
		}
		g := uint16(ip[2*i])<<8 | uint16(ip[2*i+1])
		started := false
		for sh := 12; sh >= 0; sh -= 4 {
			d := g >> sh & 0xf
			if d != 0 || started || sh == 0 {
				dst = append(dst, digits[d])
				started = true
			}
		}
	}
	return dst
}

// initOps returns what the edge applied to a session the origin may not
// know yet, for Touch.Init and X-Session-Init: the well-known fields the
// origin accepts there (site code, currency, target location, locale with
// the site's defaults filled in, and trackingAllowed) and the public
// attributes (captured values).
func initOps(sess *wire.Session, site *config.Site) []wire.Op {
	v := sess
	if site != nil {
		v = withDefaults(sess, site)
	}
	var ops []wire.Op
	for _, f := range [...]wire.Field{wire.FieldSiteCode, wire.FieldCurrency, wire.FieldTargetLocation, wire.FieldLocale, wire.FieldTrackingAllowed} {
		if !v.Fields[f].IsZero() {
			ops = append(ops, wire.Op{Code: wire.OpSetField, Field: f, Value: v.Fields[f]})
		}
	}
	for _, a := range v.Attrs[wire.NamespacePublic] {
		ops = append(ops, wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: a.Key, Value: a.Value})
	}
	return ops
}

// mayCreate reports whether a call for the stream's session may create it
// at the origin: an edge-minted token (anonymous, generation 1) whose
// session this VM has not seen stored there.
func mayCreate(s *stream) bool {
	return s.claims.Kind == wire.KindAnonymous && s.claims.Generation == 1 && (s.entry == nil || s.entry.state != stateOrigin)
}

// initHeader returns the X-Session-Init value of a self-service write that
// may create the session: base64url (no padding) of a touch report with
// this one session, its device and what the edge applied to it.
func (p *Plugin) initHeader(s *stream) string {
	sess := &wire.Session{}
	if s.entry != nil {
		sess = s.entry.sess
	} else { // minted by another VM of this proxy: what it captured
		sess = p.withMintedInit(&wire.Session{ID: s.claims.ID, Kind: s.claims.Kind, Generation: s.claims.Generation}, &s.claims)
	}
	t := wire.Touch{ID: s.claims.ID, Kind: s.claims.Kind, Generation: s.claims.Generation, LastSeen: s.nowMs,
		IdleDeadline: s.claims.IdleDeadline * 1000, HardDeadline: s.claims.HardDeadline * 1000, Init: initOps(sess, s.site)}
	if dev := p.device(s); dev != nil {
		t.Device = *dev
	}
	return string(wire.AppendBase64URL(nil, wire.AppendTouches(nil, []wire.Touch{t})))
}
