package wire

import (
	"errors"
)

// IDLen is the length of a session id in bytes.
const IDLen = 16

// IDTextLen is the length of a session id in its text form (base64url, no padding).
const IDTextLen = 22

// ID identifies a session: 16 bytes from a CSPRNG, or, for shared sessions, a
// keyed hash of the session's name (see SharedID).
type ID [IDLen]byte

// ErrBadID reports a session id that is not 22 characters of base64url.
var ErrBadID = errors.New("wire: session id is not 22 characters of base64url")

// NewID returns a fresh random session id from crypto/rand.
func NewID() (ID, error) {
	var id ID
	if err := randRead(id[:]); err != nil {
		return ID{}, err
	}
	return id, nil
}

// String returns the id as base64url without padding.
func (id ID) String() string {
	var b [IDTextLen]byte
	rawURLB64.AppendEncode(b[:0], id[:])
	return string(b[:])
}

// AppendText appends the id as base64url without padding to dst.
func (id ID) AppendText(dst []byte) []byte {
	return rawURLB64.AppendEncode(dst, id[:])
}

// IsZero reports whether the id is all zeroes (no session).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses the text form of a session id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != IDTextLen {
		return ID{}, ErrBadID
	}
	var buf [IDLen + 2]byte
	n, err := rawURLB64.Decode(buf[:], []byte(s))
	if err != nil || n != IDLen {
		return ID{}, ErrBadID
	}
	copy(id[:], buf[:IDLen])
	return id, nil
}

// ParseIDBytes is ParseID for a byte slice; it does not allocate.
func ParseIDBytes(s []byte) (ID, error) {
	var id ID
	if len(s) != IDTextLen {
		return ID{}, ErrBadID
	}
	var buf [IDLen + 2]byte
	n, err := rawURLB64.Decode(buf[:], s)
	if err != nil || n != IDLen {
		return ID{}, ErrBadID
	}
	copy(id[:], buf[:IDLen])
	return id, nil
}

// Kind is the kind of a session.
type Kind uint8

// The session kinds. The zero Kind is invalid, so a forgotten field is caught.
const (
	KindAnonymous Kind = 1 // not logged in
	KindCustomer  Kind = 2 // logged in
	KindShared    Kind = 3 // named, found by name (see SharedID)
)

// String returns the kind's name as used in JSON and headers.
func (k Kind) String() string {
	switch k {
	case KindAnonymous:
		return "anonymous"
	case KindCustomer:
		return "customer"
	case KindShared:
		return "shared"
	}
	return "invalid"
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= KindAnonymous && k <= KindShared }

// ParseKind parses a kind name; ok is false for an unknown name.
func ParseKind(s string) (k Kind, ok bool) {
	switch s {
	case "anonymous":
		return KindAnonymous, true
	case "customer":
		return KindCustomer, true
	case "shared":
		return KindShared, true
	}
	return 0, false
}
