//go:build !wasip1

package wire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"hash"
	"sync"
)

// The package's cryptography natively: the standard library's. The wasm
// guest build (crypto_wasip1.go) uses sha256.go and WASI's random_get
// instead, so that it links no crypto package.

// Sum256 returns the SHA-256 digest of b.
func Sum256(b []byte) [32]byte { return sha256.Sum256(b) }

// sum256 is SHA-256 of the concatenation of parts.
func sum256(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// hmacSHA256 is HMAC-SHA256 of the concatenation of parts with key.
func hmacSHA256(key []byte, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// randRead fills b from the system's CSPRNG.
func randRead(b []byte) error {
	_, err := rand.Read(b)
	return err
}

// ctEqual reports whether a and b are equal, in constant time.
func ctEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// hmacKey holds a secret as the SHA-256 states after absorbing its two
// padded blocks, so a tag costs two compression blocks instead of four (that
// halves a token's first verification in the wasm guest).
type hmacKey struct {
	inner, outer []byte // marshalled sha256 states
}

func newHMACKey(secret []byte) *hmacKey {
	if len(secret) > sha256.BlockSize {
		sum := sha256.Sum256(secret)
		secret = sum[:]
	}
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], secret)
	copy(opad[:], secret)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	state := func(pad []byte) []byte {
		h := sha256.New()
		h.Write(pad)
		b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			panic("wire: sha256 state cannot be saved: " + err.Error())
		}
		return b
	}
	return &hmacKey{inner: state(ipad[:]), outer: state(opad[:])}
}

// hasher is a reusable SHA-256 and the buffer its sums go to, pooled so a
// tag allocates nothing.
type hasher struct {
	h    hash.Hash
	body [tokenBodyLen]byte // the caller's body, copied: passing its own through the interface would move it to the heap
	sum  [sha256.Size]byte
}

var hashers = sync.Pool{New: func() any { return &hasher{h: sha256.New()} }}

// tag computes HMAC-SHA256 of a token body.
func (k *hmacKey) tag(body *[tokenBodyLen]byte) [sha256.Size]byte {
	hs := hashers.Get().(*hasher)
	restore := hs.h.(encoding.BinaryUnmarshaler)
	if restore.UnmarshalBinary(k.inner) != nil {
		panic("wire: sha256 state cannot be restored")
	}
	hs.body = *body
	hs.h.Write(hs.body[:])
	inner := hs.h.Sum(hs.sum[:0])
	if restore.UnmarshalBinary(k.outer) != nil {
		panic("wire: sha256 state cannot be restored")
	}
	hs.h.Write(inner)
	out := [sha256.Size]byte(hs.h.Sum(hs.sum[:0]))
	hashers.Put(hs)
	return out
}
