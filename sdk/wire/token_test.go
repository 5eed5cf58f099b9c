package wire

import (
	"bytes"
	"errors"
	"testing"
)

var (
	testKey1 = []byte("k1-0123456789abcdef0123456789abc")
	testKey2 = []byte("k2-0123456789abcdef0123456789abc")
)

func testKeyring(t testing.TB, active uint8, ids ...uint8) *Keyring {
	t.Helper()
	secrets := map[uint8][]byte{}
	for _, id := range ids {
		secrets[id] = map[uint8][]byte{1: testKey1, 2: testKey2}[id]
	}
	kr, err := NewKeyring(active, secrets)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

var testClaims = Claims{Kind: KindAnonymous, ID: ID{0xde, 0xad, 0xbe, 0xef}, Generation: 1,
	IssuedAt: 1_700_000_000, IdleDeadline: 1_700_003_600, HardDeadline: 1_700_086_400}

func TestVerifyTokenErrors(t *testing.T) {
	kr := testKeyring(t, 1, 1, 2)
	good := kr.AppendToken(nil, &testClaims)
	now := testClaims.IssuedAt + 10

	flip := func(i int) []byte {
		b := bytes.Clone(good)
		// Change one character to another valid base64url character.
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return b
	}
	wrongVersion := func() []byte {
		var raw [TokenRawLen]byte
		n, _ := strictB64.Decode(raw[:], good)
		raw[0] = 2
		return strictB64.AppendEncode(nil, raw[:n])
	}
	removed := testKeyring(t, 2, 2) // key 1 rotated out
	tests := []struct {
		name  string
		kr    *Keyring
		token []byte
		now   int64
		want  error
	}{
		{"valid", kr, good, now, nil},
		{"empty", kr, nil, now, ErrTokenMalformed},
		{"truncated", kr, good[:TokenLen-1], now, ErrTokenMalformed},
		{"over-long", kr, append(bytes.Clone(good), 'A'), now, ErrTokenMalformed},
		{"not base64url", kr, bytes.Replace(bytes.Clone(good), good[:1], []byte("+"), 1), now, ErrTokenMalformed},
		{"wrong version", kr, wrongVersion(), now, ErrTokenVersion},
		{"removed key", removed, good, now, ErrTokenUnknownKey},
		{"flipped kind", kr, flip(3), now, ErrTokenBadSignature},
		{"flipped id", kr, flip(10), now, ErrTokenBadSignature},
		{"flipped deadline", kr, flip(50), now, ErrTokenBadSignature},
		{"flipped tag", kr, flip(70), now, ErrTokenBadSignature},
		{"hard expired", kr, good, testClaims.HardDeadline, ErrTokenHardExpired},
		{"idle expired", kr, good, testClaims.IdleDeadline, ErrTokenIdleExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Claims
			err := tt.kr.VerifyToken(tt.token, tt.now, &c)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyToken = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestIdleExpiredKeepsClaims(t *testing.T) {
	kr := testKeyring(t, 1, 1)
	var c Claims
	err := kr.VerifyToken(kr.AppendToken(nil, &testClaims), testClaims.IdleDeadline+1, &c)
	if !errors.Is(err, ErrTokenIdleExpired) {
		t.Fatalf("err = %v", err)
	}
	want := testClaims
	want.KeyID = 1
	if c != want {
		t.Fatalf("claims = %+v, want %+v", c, want)
	}
}

func TestKeyRotation(t *testing.T) {
	old := testKeyring(t, 1, 1)
	both := testKeyring(t, 2, 1, 2)
	tok := old.AppendToken(nil, &testClaims)
	var c Claims
	if err := both.VerifyToken(tok, testClaims.IssuedAt, &c); err != nil || c.KeyID != 1 {
		t.Fatalf("old token under the rotated keyring: %v (key %d)", err, c.KeyID)
	}
	fresh := both.AppendToken(nil, &testClaims)
	if err := both.VerifyToken(fresh, testClaims.IssuedAt, &c); err != nil || c.KeyID != 2 {
		t.Fatalf("new token: %v (key %d)", err, c.KeyID)
	}
	if err := old.VerifyToken(fresh, testClaims.IssuedAt, &c); !errors.Is(err, ErrTokenUnknownKey) {
		t.Fatalf("new token under the old keyring: %v", err)
	}
}

func TestNoDeadlines(t *testing.T) {
	kr := testKeyring(t, 1, 1)
	c := Claims{Kind: KindShared, ID: ID{1}, Generation: 1, IssuedAt: 1}
	var got Claims
	if err := kr.VerifyToken(kr.AppendToken(nil, &c), 1<<40, &got); err != nil {
		t.Fatalf("a token without deadlines expired: %v", err)
	}
}

// TestNewKeysReject: the token keyring and the assertion keys refuse a
// short secret and an active key they do not list.
func TestNewKeysReject(t *testing.T) {
	for name, newKeys := range map[string]func(active uint8, secrets map[uint8][]byte) error{
		"keyring": func(active uint8, secrets map[uint8][]byte) error {
			_, err := NewKeyring(active, secrets)
			return err
		},
		"assertion keys": func(active uint8, secrets map[uint8][]byte) error {
			_, err := NewAssertionKeys(active, secrets)
			return err
		},
	} {
		if newKeys(1, map[uint8][]byte{1: []byte("short")}) == nil {
			t.Errorf("%s: accepted a 5-byte secret", name)
		}
		if newKeys(3, map[uint8][]byte{1: testKey1}) == nil {
			t.Errorf("%s: accepted an active key that is not listed", name)
		}
	}
}

func TestVerifyTokenDoesNotAllocate(t *testing.T) {
	kr := testKeyring(t, 1, 1)
	tok := kr.AppendToken(nil, &testClaims)
	bad := bytes.Clone(tok)
	bad[len(bad)-1] ^= 1 // still base64url, wrong tag
	buf := make([]byte, 0, TokenLen)
	var c Claims
	allocs := testing.AllocsPerRun(100, func() {
		_ = kr.VerifyToken(tok, testClaims.IssuedAt, &c)
		_ = kr.VerifyToken(bad, testClaims.IssuedAt, &c)
		buf = kr.AppendToken(buf[:0], &testClaims)
	})
	if allocs != 0 {
		t.Fatalf("VerifyToken/AppendToken allocate %v times per run", allocs)
	}
}

func TestIDText(t *testing.T) {
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseID(id.String())
	if err != nil || back != id {
		t.Fatalf("ParseID(%q) = %v, %v", id.String(), back, err)
	}
	for _, bad := range []string{"", "short", id.String() + "A", "!!!!!!!!!!!!!!!!!!!!!!"} {
		if _, err := ParseID(bad); !errors.Is(err, ErrBadID) {
			t.Errorf("ParseID(%q) = %v, want ErrBadID", bad, err)
		}
	}
	other, _ := NewID()
	if other == id {
		t.Fatal("two random ids are equal")
	}
}

func TestSharedID(t *testing.T) {
	a := SharedID(testKey1, "settings")
	if a != SharedID(testKey1, "settings") {
		t.Fatal("shared id is not stable")
	}
	if a == SharedID(testKey2, "settings") || a == SharedID(testKey1, "other") {
		t.Fatal("shared id ignores the key or the name")
	}
}

func FuzzVerifyToken(f *testing.F) {
	kr := testKeyring(f, 1, 1)
	good := kr.AppendToken(nil, &testClaims)
	f.Add(good, int64(testClaims.IssuedAt))
	f.Add(good[:40], int64(0))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, tok []byte, now int64) {
		var c Claims
		err := kr.VerifyToken(tok, now, &c)
		if err == nil || errors.Is(err, ErrTokenIdleExpired) || errors.Is(err, ErrTokenHardExpired) {
			// Anything that verifies must be exactly what we would mint.
			if again := kr.AppendToken(nil, &c); !bytes.Equal(again, tok) {
				t.Fatalf("verified token %q re-mints as %q", tok, again)
			}
		}
	})
}
