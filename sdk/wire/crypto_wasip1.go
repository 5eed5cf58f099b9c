//go:build wasip1

package wire

import (
	"errors"
	"unsafe"
)

// The package's cryptography in the wasm guest: SHA-256 and HMAC from
// sha256.go, randomness from WASI's random_get (what crypto/rand reads on
// wasip1 too), and no crypto package linked. crypto_std.go is the native
// build.

// Sum256 returns the SHA-256 digest of b.
func Sum256(b []byte) [32]byte { return sum256d(b) }

func sum256(parts ...[]byte) [32]byte { return sum256d(parts...) }

func hmacSHA256(key []byte, parts ...[]byte) [32]byte { return hmacSHA256d(key, parts...) }

func ctEqual(a, b []byte) bool { return constantTimeEqual(a, b) }

//go:wasmimport wasi_snapshot_preview1 random_get
func randomGet(buf unsafe.Pointer, size uint32) uint32

var errRandom = errors.New("wire: random_get failed")

func randRead(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if randomGet(unsafe.Pointer(&b[0]), uint32(len(b))) != 0 {
		return errRandom
	}
	return nil
}

// hmacKey holds a secret as the SHA-256 states after absorbing its two
// padded blocks, so a tag costs two compression blocks instead of four.
type hmacKey struct {
	inner, outer sha256d
}

func newHMACKey(secret []byte) *hmacKey {
	inner, outer := hmacPads(secret)
	return &hmacKey{inner: inner, outer: outer}
}

// tag computes HMAC-SHA256 of a token body.
func (k *hmacKey) tag(body *[tokenBodyLen]byte) [32]byte {
	inner, outer := k.inner, k.outer
	inner.write(body[:])
	return hmacFinish(&inner, &outer)
}
