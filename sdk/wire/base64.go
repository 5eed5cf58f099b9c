package wire

import (
	"errors"
	"slices"
)

// Base64 as the package and the guest use it, written here because
// encoding/base64 costs the wasm guest about 20 KB. An encoding decodes
// exactly as encoding/base64's does (newlines skipped, padding required or
// refused, trailing bits checked when strict); the tests compare the two.
type b64Encoding struct {
	alphabet string
	pad      bool // '=' padding, written and required
	strict   bool // non-zero trailing bits are refused
	dec      [256]byte
}

func newB64(alphabet string, pad, strict bool) *b64Encoding {
	e := &b64Encoding{alphabet: alphabet, pad: pad, strict: strict}
	for i := range e.dec {
		e.dec[i] = 0xff
	}
	for i := range len(alphabet) {
		e.dec[alphabet[i]] = byte(i)
	}
	return e
}

const (
	b64StdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

var (
	rawURLB64 = newB64(b64URLAlphabet, false, false) // base64.RawURLEncoding
	stdB64    = newB64(b64StdAlphabet, true, false)  // base64.StdEncoding
	// strictB64 rejects non-zero trailing bits, so every token has one text
	// form (base64.RawURLEncoding.Strict()).
	strictB64 = newB64(b64URLAlphabet, false, true)
)

var errB64 = errors.New("wire: malformed base64")

// AppendEncode appends the encoding of src to dst.
func (e *b64Encoding) AppendEncode(dst, src []byte) []byte {
	a := e.alphabet
	size := len(src) / 3 * 4
	switch {
	case len(src)%3 != 0 && e.pad:
		size += 4
	case len(src)%3 != 0:
		size += len(src)%3 + 1
	}
	start := len(dst)
	dst = slices.Grow(dst, size)[:start+size]
	out := dst[start:]
	for len(src) >= 3 && len(out) >= 4 {
		v := uint(src[0])<<16 | uint(src[1])<<8 | uint(src[2])
		out[0], out[1], out[2], out[3] = a[v>>18&0x3f], a[v>>12&0x3f], a[v>>6&0x3f], a[v&0x3f]
		src, out = src[3:], out[4:]
	}
	switch len(src) {
	case 1:
		v := uint(src[0]) << 16
		out[0], out[1] = a[v>>18&0x3f], a[v>>12&0x3f]
		if e.pad {
			out[2], out[3] = '=', '='
		}
	case 2:
		v := uint(src[0])<<16 | uint(src[1])<<8
		out[0], out[1], out[2] = a[v>>18&0x3f], a[v>>12&0x3f], a[v>>6&0x3f]
		if e.pad {
			out[3] = '='
		}
	}
	return dst
}

// Decode decodes src into dst and returns the number of bytes written; a
// dst too short for the decoded bytes is an error.
func (e *b64Encoding) Decode(dst, src []byte) (int, error) {
	n, si := 0, 0
	for si < len(src) {
		// Four alphabet characters: the common case, without the checks
		// for newlines, padding and the end below.
		if len(src)-si >= 4 && len(dst)-n >= 3 {
			a, b, c, d := e.dec[src[si]], e.dec[src[si+1]], e.dec[src[si+2]], e.dec[src[si+3]]
			if (a|b|c|d)&0x80 == 0 {
				v := uint(a)<<18 | uint(b)<<12 | uint(c)<<6 | uint(d)
				dst[n], dst[n+1], dst[n+2] = byte(v>>16), byte(v>>8), byte(v)
				n += 3
				si += 4
				continue
			}
		}
		var q [4]byte
		j := 0
		for j < 4 {
			if si == len(src) {
				if j == 1 || j > 1 && e.pad {
					return n, errB64
				}
				break
			}
			c := src[si]
			si++
			if v := e.dec[c]; v != 0xff {
				q[j] = v
				j++
				continue
			}
			if c == '\n' || c == '\r' {
				continue
			}
			if !e.pad || c != '=' || j < 2 {
				return n, errB64
			}
			if j == 2 { // "==": the second '=' may follow newlines
				for si < len(src) && (src[si] == '\n' || src[si] == '\r') {
					si++
				}
				if si == len(src) || src[si] != '=' {
					return n, errB64
				}
				si++
			}
			for si < len(src) && (src[si] == '\n' || src[si] == '\r') {
				si++
			}
			if si < len(src) {
				return n, errB64
			}
			break
		}
		if j == 0 {
			break
		}
		v := uint(q[0])<<18 | uint(q[1])<<12 | uint(q[2])<<6 | uint(q[3])
		out := j - 1
		if len(dst)-n < out {
			return n, errB64
		}
		if e.strict && (j == 2 && v&0xffff != 0 || j == 3 && v&0xff != 0) {
			return n, errB64
		}
		for k := range out {
			dst[n+k] = byte(v >> (16 - 8*k))
		}
		n += out
		if j < 4 {
			break
		}
	}
	return n, nil
}

// AppendBase64URL appends src as unpadded base64url (RFC 4648 section 5) to
// dst.
func AppendBase64URL(dst, src []byte) []byte { return rawURLB64.AppendEncode(dst, src) }

// DecodeKeySecret decodes a key secret as sessionedge configurations write
// it: standard base64 with padding, or unpadded base64url.
func DecodeKeySecret(s string) ([]byte, bool) {
	buf := make([]byte, len(s)*3/4+3)
	if n, err := stdB64.Decode(buf, []byte(s)); err == nil {
		return buf[:n], true
	}
	if n, err := rawURLB64.Decode(buf, []byte(s)); err == nil {
		return buf[:n], true
	}
	return nil, false
}
