package wire

import (
	"encoding/binary"
	"errors"
)

// Token layout, version 1 (docs/wire.md draws it):
//
//	off  len  field
//	  0    1  version (1)
//	  1    1  key id
//	  2    1  kind
//	  3   16  session id
//	 19    4  generation      (uint32, big-endian)
//	 23    8  issued at       (int64 Unix seconds, big-endian)
//	 31    8  idle deadline   (int64 Unix seconds; 0 = none)
//	 39    8  hard deadline   (int64 Unix seconds; 0 = none)
//	 47   16  tag: HMAC-SHA256(key, bytes 0..46), first 16 bytes
//	 63       end; the cookie value is these bytes in base64url without padding
const (
	TokenVersion = 1
	tokenBodyLen = 47
	tokenTagLen  = 16
	// TokenRawLen is the length of a token in bytes before base64url.
	TokenRawLen = tokenBodyLen + tokenTagLen
	// TokenLen is the length of a token in its text (cookie) form.
	TokenLen = (TokenRawLen*8 + 5) / 6
	// MinKeyLen is the shortest secret a Keyring accepts.
	MinKeyLen = 32
)

// The errors of VerifyToken. Each names one reason, so the edge can log and
// count them apart; only ErrIdleExpired comes with usable claims.
var (
	ErrTokenMalformed    = errors.New("wire: token malformed")
	ErrTokenVersion      = errors.New("wire: token version not supported")
	ErrTokenUnknownKey   = errors.New("wire: token signed with an unknown key")
	ErrTokenBadSignature = errors.New("wire: token signature does not verify")
	ErrTokenHardExpired  = errors.New("wire: token past its hard deadline")
	ErrTokenIdleExpired  = errors.New("wire: token past its idle deadline")
)

// Claims is what a token says about its session. Times are Unix seconds; a
// zero deadline means none.
type Claims struct {
	KeyID        uint8
	Kind         Kind
	ID           ID
	Generation   uint32
	IssuedAt     int64
	IdleDeadline int64
	HardDeadline int64
}

// Keyring signs tokens with its active key and verifies them with every key it
// lists, so keys rotate without logging anyone out: add the new key, make it
// active once every edge has it, remove the old one after the longest hard
// timeout. A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	active uint8
	keys   [256]*hmacKey
}

// NewKeyring returns a keyring with the given secrets (key id → secret, each at
// least MinKeyLen bytes) that signs with active.
func NewKeyring(active uint8, secrets map[uint8][]byte) (*Keyring, error) {
	kr := &Keyring{active: active}
	if err := deriveKeys(&kr.keys, "key", active, secrets, newHMACKey); err != nil {
		return nil, err
	}
	return kr, nil
}

// deriveKeys fills keys with the key derive makes of each secret (key id →
// secret, each at least MinKeyLen bytes); active must be among them. what
// names the keys in errors.
func deriveKeys[K any](keys *[256]*K, what string, active uint8, secrets map[uint8][]byte, derive func(secret []byte) *K) error {
	for id, s := range secrets {
		if len(s) < MinKeyLen {
			return errors.New("wire: " + what + " " + itoa(int(id)) + " is " + itoa(len(s)) + " bytes, want at least " + itoa(MinKeyLen))
		}
		keys[id] = derive(s)
	}
	if keys[active] == nil {
		return errors.New("wire: active " + what + " " + itoa(int(active)) + " is not listed")
	}
	return nil
}

// Active returns the id of the key that signs.
func (kr *Keyring) Active() uint8 { return kr.active }

// Has reports whether the keyring can verify tokens of key id.
func (kr *Keyring) Has(id uint8) bool { return kr.keys[id] != nil }

// AppendToken appends the text form of a token for c, signed with the active
// key (c.KeyID is ignored), to dst and returns the extended buffer.
func (kr *Keyring) AppendToken(dst []byte, c *Claims) []byte {
	var raw [TokenRawLen]byte
	body := (*[tokenBodyLen]byte)(raw[:tokenBodyLen])
	body[0] = TokenVersion
	body[1] = kr.active
	body[2] = byte(c.Kind)
	copy(body[3:19], c.ID[:])
	binary.BigEndian.PutUint32(body[19:23], c.Generation)
	binary.BigEndian.PutUint64(body[23:31], uint64(c.IssuedAt))
	binary.BigEndian.PutUint64(body[31:39], uint64(c.IdleDeadline))
	binary.BigEndian.PutUint64(body[39:47], uint64(c.HardDeadline))
	tag := kr.keys[kr.active].tag(body)
	copy(raw[tokenBodyLen:], tag[:tokenTagLen])
	return strictB64.AppendEncode(dst, raw[:])
}

// VerifyToken checks a token's text form at time now (Unix seconds) and fills
// c. It runs in constant time with respect to the secret and the tag, and does
// not allocate. On ErrTokenIdleExpired c holds the verified claims, because the
// caller applies the idle action of the session's kind; on any other error c
// is unspecified.
func (kr *Keyring) VerifyToken(token []byte, now int64, c *Claims) error {
	if len(token) != TokenLen {
		return ErrTokenMalformed
	}
	var raw [TokenRawLen + 2]byte
	n, err := strictB64.Decode(raw[:], token)
	if err != nil || n != TokenRawLen {
		return ErrTokenMalformed
	}
	body := (*[tokenBodyLen]byte)(raw[:tokenBodyLen])
	if body[0] != TokenVersion {
		return ErrTokenVersion
	}
	key := kr.keys[body[1]]
	if key == nil {
		return ErrTokenUnknownKey
	}
	want := key.tag(body)
	if !ctEqual(want[:tokenTagLen], raw[tokenBodyLen:TokenRawLen]) {
		return ErrTokenBadSignature
	}
	c.KeyID = body[1]
	c.Kind = Kind(body[2])
	copy(c.ID[:], body[3:19])
	c.Generation = binary.BigEndian.Uint32(body[19:23])
	c.IssuedAt = int64(binary.BigEndian.Uint64(body[23:31]))
	c.IdleDeadline = int64(binary.BigEndian.Uint64(body[31:39]))
	c.HardDeadline = int64(binary.BigEndian.Uint64(body[39:47]))
	if !c.Kind.Valid() {
		return ErrTokenMalformed
	}
	if c.HardDeadline != 0 && now >= c.HardDeadline {
		return ErrTokenHardExpired
	}
	if c.IdleDeadline != 0 && now >= c.IdleDeadline {
		return ErrTokenIdleExpired
	}
	return nil
}

// SharedID derives the id of the shared session called name from a secret
// that is not a token key (token keys rotate; shared ids must not change), so a
// holder of the name and the secret finds the session. Ordinary ids are random
// (NewID) and never derived from names.
func SharedID(secret []byte, name string) ID {
	mac := hmacSHA256(secret, []byte("sessionedge shared session\x00"), []byte(name))
	var id ID
	copy(id[:], mac[:])
	return id
}
