package filter

import (
	"math/bits"
	"unsafe"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// equalBytes reports whether a and b hold the same bytes. Go's wasm port
// compares memory one byte per loop turn (runtime.memequal), about fifteen
// instructions a byte; this compares eight bytes per load (a wasm load may
// be unaligned), which matters for the 100-odd bytes of a token on every
// request.
func equalBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	n := len(a)
	if n < 8 {
		for i := 0; i < n; i++ {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	for i := 0; i+8 <= n; i += 8 {
		if *(*uint64)(unsafe.Pointer(&a[i])) != *(*uint64)(unsafe.Pointer(&b[i])) {
			return false
		}
	}
	// The last 8 bytes, overlapping what the loop compared: no byte loop.
	return *(*uint64)(unsafe.Pointer(&a[n-8])) == *(*uint64)(unsafe.Pointer(&b[n-8]))
}

// equalString is equalBytes of b and the bytes of s.
func equalString(b []byte, s string) bool {
	return equalBytes(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// equalID reports whether a and b are the same session id.
func equalID(a, b *wire.ID) bool {
	return *(*uint64)(unsafe.Pointer(&a[0])) == *(*uint64)(unsafe.Pointer(&b[0])) &&
		*(*uint64)(unsafe.Pointer(&a[8])) == *(*uint64)(unsafe.Pointer(&b[8]))
}

// indexByte returns the index of the first c in b, or -1. Go's wasm port
// (internal/bytealg) tests one byte per loop turn; this tests eight per
// load: a cookie header scan passes over a whole token.
func indexByte(b []byte, c byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	pat := uint64(c) * lo
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := *(*uint64)(unsafe.Pointer(&b[i])) ^ pat
		// A zero byte of x, the first one exactly: bytes below it are
		// non-zero, so no borrow reaches it.
		if t := (x - lo) &^ x & hi; t != 0 {
			return i + bits.TrailingZeros64(t)>>3
		}
	}
	for ; i < len(b); i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// foldName is a lower-case header name of 4 to 16 bytes prepared for
// equalFoldName: its first and last 8 (or 4) bytes as words, and masks
// with 0x20 in the bytes that are letters, so that OR-ing a word of the
// candidate with the mask folds its letters to lower case and leaves its
// other bytes as they are.
type foldName struct {
	n            int
	head, tail   uint64
	headM, tailM uint64
}

func newFoldName(s string) foldName {
	f := foldName{n: len(s)}
	word := func(part string) (w, m uint64) {
		for i := len(part) - 1; i >= 0; i-- {
			w = w<<8 | uint64(part[i])
			m <<= 8
			if 'a' <= part[i] && part[i] <= 'z' {
				m |= 0x20
			}
		}
		return w, m
	}
	k := 8
	if len(s) < 8 {
		k = 4
	}
	f.head, f.headM = word(s[:k])
	f.tail, f.tailM = word(s[len(s)-k:])
	return f
}

// equalFoldName reports whether b is the name f, ASCII letters compared
// without case: two loads instead of a loop over the bytes.
func equalFoldName(b []byte, f *foldName) bool {
	if len(b) != f.n {
		return false
	}
	if f.n >= 8 {
		return *(*uint64)(unsafe.Pointer(&b[0]))|f.headM == f.head &&
			*(*uint64)(unsafe.Pointer(&b[f.n-8]))|f.tailM == f.tail
	}
	return uint64(*(*uint32)(unsafe.Pointer(&b[0])))|f.headM == f.head &&
		uint64(*(*uint32)(unsafe.Pointer(&b[f.n-4])))|f.tailM == f.tail
}
