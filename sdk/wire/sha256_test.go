package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// TestSHA256Small checks the guest's SHA-256 (sha256.go) against
// crypto/sha256 on random inputs of every length up to 300 bytes and some
// longer ones, written whole and in random pieces.
func TestSHA256Small(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{1000, 4096, 65537}
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for rep := 0; rep < 4; rep++ {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			want := sha256.Sum256(b)
			if got := sum256d(b); got != want {
				t.Fatalf("length %d: %x, want %x", n, got, want)
			}
			var d sha256d
			d.reset()
			for rest := b; len(rest) > 0; {
				k := min(len(rest), rng.IntN(130))
				d.write(rest[:k])
				rest = rest[k:]
			}
			if got := d.sum(); got != want {
				t.Fatalf("length %d in pieces: %x, want %x", n, got, want)
			}
		}
	}
}

// TestHMACSHA256Small checks the guest's HMAC-SHA256 against the test cases
// of RFC 4231 (cases 1–4, 6 and 7; case 5 truncates the tag) and against
// crypto/hmac on random keys (shorter and longer than a block) and messages,
// through hmacSHA256d and through a token key's saved pads.
func TestHMACSHA256Small(t *testing.T) {
	rep := func(b byte, n int) []byte {
		out := make([]byte, n)
		for i := range out {
			out[i] = b
		}
		return out
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rfc := []struct {
		key, data []byte
		mac       string
	}{
		{rep(0x0b, 20), []byte("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{[]byte("Jefe"), []byte("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{rep(0xaa, 20), rep(0xdd, 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
		{unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), rep(0xcd, 50),
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
		{rep(0xaa, 131), []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{rep(0xaa, 131), []byte("This is a test using a larger than block-size key and a larger than block-size data. " +
			"The key needs to be hashed before being used by the HMAC algorithm."),
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	}
	for i, c := range rfc {
		got := hmacSHA256d(c.key, c.data)
		if hex.EncodeToString(got[:]) != c.mac {
			t.Errorf("RFC 4231 case %d: %x, want %s", i, got, c.mac)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		key := make([]byte, rng.IntN(150))
		msg := make([]byte, rng.IntN(300))
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		want := m.Sum(nil)
		cut := rng.IntN(len(msg) + 1)
		if got := hmacSHA256d(key, msg[:cut], msg[cut:]); string(got[:]) != string(want) {
			t.Fatalf("key %d bytes, message %d bytes: %x, want %x", len(key), len(msg), got, want)
		}
		// A token tag: the saved pads of the key, then a 47-byte body.
		var body [tokenBodyLen]byte
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		inner, outer := hmacPads(key)
		inner.write(body[:])
		tag := hmacFinish(&inner, &outer)
		if want := newHMACKey(key).tag(&body); tag != want {
			t.Fatalf("token tag with key %d bytes: %x, want %x", len(key), tag, want)
		}
	}
	if !constantTimeEqual([]byte("abc"), []byte("abc")) || constantTimeEqual([]byte("abc"), []byte("abd")) ||
		constantTimeEqual([]byte("ab"), []byte("abc")) {
		t.Fatal("constantTimeEqual is wrong")
	}
}
