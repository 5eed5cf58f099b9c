package filter

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestTable runs random inserts, replacements, deletions and evictions on a
// table and on a Go map side by side, with keys from a small range (so they
// collide in their slots and deletions shift long probe runs), and compares
// every lookup.
func TestTable(t *testing.T) {
	for _, keyRange := range []uint64{8, 100, 5000} {
		rng := rand.New(rand.NewPCG(keyRange, 1))
		var tb table[int]
		want := map[uint64]*int{}
		for op := 0; op < 200000; op++ {
			k := rng.Uint64N(keyRange)
			if keyRange == 5000 {
				k <<= 40 // keys that differ in the high bits only
			}
			switch r := rng.IntN(10); {
			case r < 5:
				v := new(int)
				*v = op
				tb.set(k, v)
				want[k] = v
			case r < 8:
				tb.del(k)
				delete(want, k)
			case r < 9 && tb.len() > 0:
				vk, v := tb.any(rng.Uint64())
				if want[vk] != v {
					t.Fatalf("any returned %d → %p, map holds %p", vk, v, want[vk])
				}
			}
			if got := tb.get(k); got != want[k] {
				t.Fatalf("range %d, op %d: get(%d) = %p, want %p", keyRange, op, k, got, want[k])
			}
			if tb.len() != len(want) {
				t.Fatalf("range %d, op %d: len %d, want %d", keyRange, op, tb.len(), len(want))
			}
		}
		for k, v := range want {
			if tb.get(k) != v {
				t.Fatalf("range %d: key %d lost", keyRange, k)
			}
		}
		tb.clear()
		if tb.len() != 0 || tb.get(1) != nil {
			t.Fatal("clear left entries")
		}
	}
}

// TestEqualBytes compares equalBytes with bytes.Equal on slices of every
// length up to 40 that differ in one byte, or not at all, at every offset.
func TestEqualBytes(t *testing.T) {
	buf := make([]byte, 64)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for n := 0; n <= 40; n++ {
		for off := 0; off < 3; off++ {
			a := buf[off : off+n]
			b := append([]byte(nil), a...)
			if !equalBytes(a, b) {
				t.Fatalf("len %d offset %d: equal slices differ", n, off)
			}
			for i := 0; i < n; i++ {
				b[i]++
				if equalBytes(a, b) {
					t.Fatalf("len %d offset %d: slices differing at %d are equal", n, off, i)
				}
				b[i]--
			}
			if n > 0 && equalBytes(a, b[:n-1]) {
				t.Fatalf("len %d: slices of different lengths are equal", n)
			}
		}
	}
	var x, y wire.ID
	for i := range x {
		x[i], y[i] = byte(i), byte(i)
	}
	if !equalID(&x, &y) {
		t.Fatal("equal ids differ")
	}
	for i := range y {
		y[i]++
		if equalID(&x, &y) {
			t.Fatalf("ids differing at %d are equal", i)
		}
		y[i]--
	}
}

// TestIndexByte compares indexByte with bytes.IndexByte for every byte
// value at every position of slices up to 40 bytes, with and without
// other occurrences after it, and with bytes that differ from the target
// by one bit (the borrow of the zero-byte test must not report them).
func TestIndexByte(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for _, c := range []byte{0, 1, ';', '=', 0x7f, 0x80, 0xff} {
			b := make([]byte, n)
			for i := range b {
				b[i] = c ^ byte(1<<(i%8))
			}
			if got := indexByte(b, c); got != -1 {
				t.Fatalf("len %d, byte %#x absent: got %d", n, c, got)
			}
			for pos := 0; pos < n; pos++ {
				old := b[pos]
				b[pos] = c
				if got, want := indexByte(b, c), bytes.IndexByte(b, c); got != want {
					t.Fatalf("len %d, byte %#x at %d: got %d, want %d", n, c, pos, got, want)
				}
				if pos+3 < n {
					b[pos+3] = c
					if got := indexByte(b, c); got != pos {
						t.Fatalf("len %d, byte %#x at %d and %d: got %d", n, c, pos, pos+3, got)
					}
					b[pos+3] = c ^ byte(1<<((pos+3)%8))
				}
				b[pos] = old
			}
		}
	}
}

// TestEqualFoldName compares equalFoldName with equalFold (a byte-wise ASCII
// case fold) on every name the header loop uses, on the name in mixed case, with
// each byte changed to every other value, and at other lengths.
func TestEqualFoldName(t *testing.T) {
	ref := equalFold // the byte loop
	for _, name := range []string{":path", "cookie", "origin", ":method", ":scheme", ":authority", "user-agent",
		"sec-fetch-site", "x-session-id", "abcd", "abcdefgh", "0123456789abcdef"} {
		f := newFoldName(name)
		b := []byte(strings.ToUpper(name))
		if !equalFoldName(b, &f) || !equalFoldName([]byte(name), &f) {
			t.Fatalf("%q does not match itself", name)
		}
		for i := range b {
			orig := b[i]
			for c := 0; c < 256; c++ {
				b[i] = byte(c)
				if got, want := equalFoldName(b, &f), ref(b, name); got != want {
					t.Fatalf("%q with byte %d = %#x: got %v, want %v", name, i, c, got, want)
				}
			}
			b[i] = orig
		}
		if equalFoldName(append(b, 'x'), &f) || equalFoldName(b[:len(b)-1], &f) {
			t.Fatalf("%q matches another length", name)
		}
	}
}
