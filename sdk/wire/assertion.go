package wire

import (
	"encoding/binary"
	"errors"
)

// The upstream assertion (docs/wire.md draws it): the edge signs what it
// forwards to the app, so an app can tell headers that came through the edge
// from headers anyone on its network could send. The app holds the same
// secret and verifies with VerifyAssertion (the SDK middlewares do).
//
//	off  len  field
//	  0    1  version (1)
//	  1    1  key id
//	  2    1  kind
//	  3    1  status (AssertOK, AssertNew, AssertDegraded)
//	  4   16  session id
//	 20    4  generation      (uint32, big-endian)
//	 24    8  session version (uint64, big-endian; 0 when new or degraded)
//	 32    8  issued at       (int64 Unix ms, big-endian)
//	 40   16  context digest: SipHash-128(k, "sessionedge ctx v1\x00" || context header value); zero without one
//	 56   16  tag: SipHash-128(k, bytes 0..55 || u16 len(authority) || authority || u16 len(path) || path)
//	 72       end; the header value is these bytes in base64url without padding
const (
	AssertionVersion = 1
	assertionBodyLen = 56
	// AssertionRawLen is the length of an assertion in bytes.
	AssertionRawLen = assertionBodyLen + 16
	// AssertionLen is the length of an assertion's header value.
	AssertionLen = (AssertionRawLen*8 + 5) / 6
)

// AssertStatus says how fresh the forwarded context is; it mirrors the
// x-session-context-status header.
type AssertStatus uint8

// The statuses of an assertion.
const (
	AssertOK       AssertStatus = 1 // the edge's current copy of the origin's state
	AssertNew      AssertStatus = 2 // minted at the edge, or unknown to the origin: site defaults only
	AssertDegraded AssertStatus = 3 // the origin was unreachable: id, kind and generation only
)

// String returns the status as x-session-context-status spells it.
func (s AssertStatus) String() string {
	switch s {
	case AssertOK:
		return "ok"
	case AssertNew:
		return "new"
	case AssertDegraded:
		return "degraded"
	}
	return "invalid"
}

// The errors of VerifyAssertion.
var (
	ErrAssertionMalformed    = errors.New("wire: session assertion malformed")
	ErrAssertionUnknownKey   = errors.New("wire: session assertion signed with an unknown key")
	ErrAssertionBadSignature = errors.New("wire: session assertion signature does not verify")
	ErrAssertionStale        = errors.New("wire: session assertion outside the clock-skew window")
	ErrAssertionContext      = errors.New("wire: x-session-context does not match the session assertion")
)

// Assertion is what the edge asserts about one forwarded request.
type Assertion struct {
	KeyID         uint8
	Kind          Kind
	Status        AssertStatus
	ID            ID
	Generation    uint32
	Version       uint64
	IssuedAt      int64    // Unix ms
	ContextDigest [16]byte // AssertionKeys.ContextDigest of the forwarded context; zero without one
}

// assertionKey is a SipHash key.
type assertionKey struct{ k0, k1 uint64 }

// AssertionKeys signs assertions with its active key and verifies them with
// every key it lists, so the secret shared by edges and apps rotates like
// the token keyring: add the new key on the apps, then on the edges with it
// active, then remove the old one. It is immutable and safe for concurrent
// use.
type AssertionKeys struct {
	active uint8
	keys   [256]*assertionKey
}

// NewAssertionKeys returns the keys for the given secrets (key id → secret,
// each at least MinKeyLen bytes) that sign with active. A secret is never
// used directly: its SipHash key is derived with SHA-256, so a secret shared
// with another purpose by mistake does not give that purpose's MAC away.
func NewAssertionKeys(active uint8, secrets map[uint8][]byte) (*AssertionKeys, error) {
	ak := &AssertionKeys{active: active}
	if err := deriveKeys(&ak.keys, "assertion key", active, secrets, func(s []byte) *assertionKey {
		sum := sum256([]byte("sessionedge assertion v1\x00"), s)
		return &assertionKey{k0: binary.LittleEndian.Uint64(sum[:8]), k1: binary.LittleEndian.Uint64(sum[8:16])}
	}); err != nil {
		return nil, err
	}
	return ak, nil
}

// Active returns the id of the key that signs.
func (ak *AssertionKeys) Active() uint8 { return ak.active }

const contextDomain = "sessionedge ctx v1\x00"

// ContextDigest returns the active key's digest of a forwarded context
// header value (the base64url text exactly as sent). It is keyed, so nobody
// without the secret can find two contexts with one digest.
func (ak *AssertionKeys) ContextDigest(ctx []byte) [16]byte {
	return ak.keys[ak.active].contextDigest(ctx)
}

func (k *assertionKey) contextDigest(ctx []byte) [16]byte {
	h := newSiphash(k.k0, k.k1)
	h.write([]byte(contextDomain))
	h.write(ctx)
	var out [16]byte
	h.sum128(&out)
	return out
}

func (k *assertionKey) tag(body *[assertionBodyLen]byte, authority, path []byte) [16]byte {
	h := newSiphash(k.k0, k.k1)
	h.write(body[:])
	h.writeByte(byte(len(authority) >> 8))
	h.writeByte(byte(len(authority)))
	h.write(authority)
	h.writeByte(byte(len(path) >> 8))
	h.writeByte(byte(len(path)))
	h.write(path)
	var out [16]byte
	h.sum128(&out)
	return out
}

// maxBound is the longest authority or path an assertion binds; longer ones
// cannot be length-prefixed in 16 bits and are refused by both sides.
const maxBound = 0xffff

// AppendAssertion appends the header value of an assertion for a, signed
// with the active key (a.KeyID is ignored) and bound to the request's
// authority and path (with its query) as forwarded, to dst. It does not
// allocate beyond growing dst. An authority or path longer than 64 KiB
// produces an assertion no app accepts.
func (ak *AssertionKeys) AppendAssertion(dst []byte, a *Assertion, authority, path []byte) []byte {
	var raw [AssertionRawLen]byte
	body := (*[assertionBodyLen]byte)(raw[:assertionBodyLen])
	body[0] = AssertionVersion
	body[1] = ak.active
	body[2] = byte(a.Kind)
	body[3] = byte(a.Status)
	copy(body[4:20], a.ID[:])
	binary.BigEndian.PutUint32(body[20:24], a.Generation)
	binary.BigEndian.PutUint64(body[24:32], a.Version)
	binary.BigEndian.PutUint64(body[32:40], uint64(a.IssuedAt))
	copy(body[40:56], a.ContextDigest[:])
	if len(authority) <= maxBound && len(path) <= maxBound {
		tag := ak.keys[ak.active].tag(body, authority, path)
		copy(raw[assertionBodyLen:], tag[:])
	}
	return strictB64.AppendEncode(dst, raw[:])
}

// verifyAssertion is VerifyAssertion with the times in Unix milliseconds
// (assertion_std.go; the wasm guest links no time package).
func (ak *AssertionKeys) verifyAssertion(text, authority, path, ctx []byte, nowMs, skewMs int64, a *Assertion) error {
	if len(text) != AssertionLen || len(authority) > maxBound || len(path) > maxBound {
		return ErrAssertionMalformed
	}
	var raw [AssertionRawLen + 2]byte
	n, err := strictB64.Decode(raw[:], text)
	if err != nil || n != AssertionRawLen {
		return ErrAssertionMalformed
	}
	body := (*[assertionBodyLen]byte)(raw[:assertionBodyLen])
	if body[0] != AssertionVersion {
		return ErrAssertionMalformed
	}
	key := ak.keys[body[1]]
	if key == nil {
		return ErrAssertionUnknownKey
	}
	want := key.tag(body, authority, path)
	if !ctEqual(want[:], raw[assertionBodyLen:AssertionRawLen]) {
		return ErrAssertionBadSignature
	}
	a.KeyID = body[1]
	a.Kind = Kind(body[2])
	a.Status = AssertStatus(body[3])
	copy(a.ID[:], body[4:20])
	a.Generation = binary.BigEndian.Uint32(body[20:24])
	a.Version = binary.BigEndian.Uint64(body[24:32])
	a.IssuedAt = int64(binary.BigEndian.Uint64(body[32:40]))
	copy(a.ContextDigest[:], body[40:56])
	if !a.Kind.Valid() || a.Status < AssertOK || a.Status > AssertDegraded {
		return ErrAssertionMalformed
	}
	age := nowMs - a.IssuedAt
	if age > skewMs || -age > skewMs {
		return ErrAssertionStale
	}
	var zero [16]byte
	switch {
	case ctx == nil && a.ContextDigest == zero:
	case ctx == nil:
		return ErrAssertionContext
	default:
		got := key.contextDigest(ctx)
		if !ctEqual(got[:], a.ContextDigest[:]) {
			return ErrAssertionContext
		}
	}
	return nil
}
