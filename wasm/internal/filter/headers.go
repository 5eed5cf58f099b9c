package filter

import (
	"bytes"
	"encoding/binary"
	"unsafe"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// The hot callbacks walk the host's serialized header maps inline instead
// of through abi.PairIter: in a Go wasm guest every call of Next, Key and
// Value costs more than the work it does. The walk is
//
//	n, off := pairsStart(b) // n < 0: malformed or oversized
//	for i := 0; i < n; i++ {
//		kl, vl := pairLens(b, i)
//		if !pairFits(b, off, kl, vl) { malformed; break }
//		k, v := b[off:off+kl], b[off+kl+1:off+kl+1+vl]
//		off += kl + vl + 2
//	}
//	// then off == len(b), or the map had bytes after its last pair
//
// which checks exactly what PairIter checks.

// pairsStart returns the number of pairs of the serialized map b and the
// offset of its first key; n is -1 when the map is malformed or larger than
// the ABI allows. An empty buffer is an empty map.
func pairsStart(b []byte) (n, off int) {
	if len(b) == 0 {
		return 0, 0
	}
	if len(b) < 4 || len(b) > proxywasm.MaxMapBytes {
		return -1, 0
	}
	c := binary.LittleEndian.Uint32(b)
	if c > proxywasm.MaxMapPairs || uint64(len(b)) < 4+8*uint64(c) {
		return -1, 0
	}
	return int(c), 4 + 8*int(c)
}

// pairLens returns the key and value lengths of pair i.
func pairLens(b []byte, i int) (kl, vl int) {
	// Lengths above MaxMapBytes cannot fit; capping them keeps the sums
	// below in range where int is 32 bits.
	_ = b[11+8*i] // one bounds check for both loads (pairsStart checked the table's size)
	k := min(*(*uint32)(unsafe.Pointer(&b[4+8*i])), proxywasm.MaxMapBytes+1)
	v := min(*(*uint32)(unsafe.Pointer(&b[8+8*i])), proxywasm.MaxMapBytes+1)
	return int(k), int(v)
}

// pairFits reports whether a key of kl and a value of vl bytes, each
// NUL-terminated, lie in b from off.
func pairFits(b []byte, off, kl, vl int) bool {
	end := off + kl + vl + 2
	return end <= len(b) && b[off+kl] == 0 && b[end-1] == 0
}

// sessionPrefix starts every header the filter owns. A request or trailer
// header whose name matches it (ignoring case, with '_' read as '-') is
// removed before anything else: CGI, WSGI, Rack and PHP apps see
// x_session_id and x-session-id as the same variable.
const sessionPrefix = "x-session-"

// foldHeader maps one byte of a header name to the form names are compared
// in: ASCII lower case, '_' as '-'.
func foldHeader(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

// hasPrefixHeader reports whether the header name b starts with prefix (a
// folded, lower-case name) once folded.
func hasPrefixHeader(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldHeader(b[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// equalHeader reports whether the header name b is name once folded.
func equalHeader(b []byte, name string) bool { return len(b) == len(name) && hasPrefixHeader(b, name) }

// isSessionHeader reports whether b is an x-session-* name in any spelling.
func isSessionHeader(b []byte) bool {
	// Most names fail at the first byte: check it before the loop.
	return len(b) >= len(sessionPrefix) && (b[0]|0x20) == 'x' && hasPrefixHeader(b, sessionPrefix)
}

// hasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring case.
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

func appendLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
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

const hexDigits = "0123456789ABCDEF"

// appendPct appends s with every byte outside visible ASCII (0x21–0x7e),
// and '%' itself, percent-encoded: a forwarded value can never carry a
// control byte, a space or a byte a header parser might read differently
// ("müller" becomes "m%C3%BCller"). The SDK decodes it.
func appendPct(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '%' {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// sameSiteFetch reports whether a Sec-Fetch-Site value allows a
// self-service write: same-origin, same-site, or none (the user typed the
// address or used a bookmark).
func sameSiteFetch(v []byte) bool {
	v = trimSpace(v)
	return equalFold(v, "same-origin") || equalFold(v, "same-site") || equalFold(v, "none")
}

// mergeCacheControl appends the Cache-Control value of a response that
// sets a session or hint cookie, given what the app set (its values joined
// with ", "): "private" first, then the app's directives except those that
// would let a shared cache store it (public, s-maxage, and any form of
// private, which "private" replaces). Everything else is kept as written,
// so no-store, no-cache and max-age survive: the result is never weaker
// than what the app asked for.
func mergeCacheControl(dst, app []byte) []byte {
	dst = append(dst, "private"...)
	for len(app) > 0 {
		var d []byte
		d, app = nextDirective(app)
		d = trimSpace(d)
		if len(d) == 0 {
			continue
		}
		name := d
		if i := bytes.IndexByte(d, '='); i >= 0 {
			name = trimSpace(d[:i])
		}
		if equalFold(name, "public") || equalFold(name, "private") || equalFold(name, "s-maxage") {
			continue
		}
		dst = append(dst, ", "...)
		dst = append(dst, d...)
	}
	return dst
}

// nextDirective splits the first directive off a Cache-Control value, at
// the first comma outside a quoted string (no-cache="a, b").
func nextDirective(v []byte) (d, rest []byte) {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case c == ',' && !quoted:
			return v[:i], v[i+1:]
		}
	}
	return v, nil
}
