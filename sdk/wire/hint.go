package wire

import (
	"encoding/binary"
	"errors"
)

// A consistency hint tells an edge the least version of a session its client
// has been told about, so a VM whose cached copy is older fetches the session
// before answering: read-your-writes without waiting for the sync feed. The
// edge hands it out after a write (the app's x-session-written response
// header, or a self-service write) and the client sends it back with its
// token. It is signed with the token keyring, bound to the session id and
// generation, so a forged hint cannot make an edge fetch on every request.
//
//	off  len  field
//	  0    1  hint version (1)
//	  1    1  key id
//	  2    8  session version (uint64, big-endian)
//	 10    8  tag: HMAC-SHA256(key, 'H' | key id | session id | generation | version), first 8 bytes
//	 18       end; base64url without padding, 24 characters
const (
	hintVersion = 1
	hintRawLen  = 18
	// HintLen is the length of a hint in its text form.
	HintLen = hintRawLen * 4 / 3
	// hintDomain starts the signed body of a hint; token bodies start with
	// their version, which is never this byte, so a hint tag can never be a
	// token tag.
	hintDomain = 'H'
)

// ErrBadHint is returned by VerifyHint for a hint that is malformed, signed
// with an unknown key, or not for this session and generation.
var ErrBadHint = errors.New("wire: consistency hint does not verify")

func hintBody(body *[tokenBodyLen]byte, keyID uint8, id ID, generation uint32, version uint64) {
	*body = [tokenBodyLen]byte{}
	body[0] = hintDomain
	body[1] = keyID
	copy(body[2:18], id[:])
	binary.BigEndian.PutUint32(body[18:22], generation)
	binary.BigEndian.PutUint64(body[22:30], version)
}

// AppendHint appends the text form of a hint that session id, at generation,
// is at least at version, signed with the active key.
func (kr *Keyring) AppendHint(dst []byte, id ID, generation uint32, version uint64) []byte {
	var body [tokenBodyLen]byte
	hintBody(&body, kr.active, id, generation, version)
	tag := kr.keys[kr.active].tag(&body)
	var raw [hintRawLen]byte
	raw[0] = hintVersion
	raw[1] = kr.active
	binary.BigEndian.PutUint64(raw[2:10], version)
	copy(raw[10:], tag[:8])
	return strictB64.AppendEncode(dst, raw[:])
}

// PeekHintVersion returns the version a hint claims without checking its
// signature, so an edge pays for the HMAC only when the claim would change
// what it does (a version newer than its cached copy).
func PeekHintVersion(text []byte) (uint64, bool) {
	if len(text) != HintLen {
		return 0, false
	}
	var raw [hintRawLen]byte
	if n, err := strictB64.Decode(raw[:], text); err != nil || n != hintRawLen || raw[0] != hintVersion {
		return 0, false
	}
	return binary.BigEndian.Uint64(raw[2:10]), true
}

// VerifyHint checks a hint for session id at generation and returns the
// version it carries. It does not allocate.
func (kr *Keyring) VerifyHint(text []byte, id ID, generation uint32) (uint64, error) {
	if len(text) != HintLen {
		return 0, ErrBadHint
	}
	var raw [hintRawLen]byte
	if n, err := strictB64.Decode(raw[:], text); err != nil || n != hintRawLen || raw[0] != hintVersion {
		return 0, ErrBadHint
	}
	key := kr.keys[raw[1]]
	if key == nil {
		return 0, ErrBadHint
	}
	version := binary.BigEndian.Uint64(raw[2:10])
	var body [tokenBodyLen]byte
	hintBody(&body, raw[1], id, generation, version)
	tag := key.tag(&body)
	if !ctEqual(tag[:8], raw[10:]) {
		return 0, ErrBadHint
	}
	return version, nil
}
