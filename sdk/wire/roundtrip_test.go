package wire

import (
	"errors"
	"testing"
)

func sampleSession(t testing.TB) *Session {
	t.Helper()
	id := ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	s, err := Apply(nil, &Delta{ID: id, Version: 1, At: 1_700_000_000_000, Ops: []Op{
		{Code: OpStart, Kind: KindAnonymous, Generation: 1, Idle: 1_700_003_600_000, Hard: 1_700_086_400_000},
		{Code: OpSetField, Field: FieldCurrency, Value: Text("EUR")},
		{Code: OpSetField, Field: FieldTrackingAllowed, Value: Bool(true)},
		{Code: OpSetAttr, NS: NamespaceCustom, Key: "color", Value: Text("red")},
		{Code: OpSetAttr, NS: NamespacePublic, Key: "prefs", Value: Map(
			Attr{"sizes", List(Int(38), Int(-2), Float(1.5), Float(0.1))},
			Attr{"budget", Decimal(1999, -2)},
			Attr{"seen", Time(1_700_000_000_123)},
			Attr{"at", Time(1_700_000_000_000)},
		)},
	}}, &DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionRoundTrip(t *testing.T) {
	s := sampleSession(t)
	b := AppendSession(nil, s)
	var got Session
	if err := DecodeSession(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(s) {
		t.Fatalf("round trip changed the session:\n got %+v\nwant %+v", got, *s)
	}
	if again := AppendSession(nil, &got); string(again) != string(b) {
		t.Fatalf("re-encoding differs")
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	dl := &Delta{ID: ID{9}, BaseVersion: 7, Version: 8, At: 1_700_000_000_000, Ops: []Op{
		{Code: OpSetAttr, NS: NamespaceCustom, Key: "color", Value: Text("red")},
	}}
	b := AppendDelta(nil, dl)
	if len(b) > 64 {
		t.Errorf("one-attribute delta is %d bytes, want ≤ 64", len(b))
	}
	var got Delta
	if err := DecodeDelta(b, &got); err != nil {
		t.Fatal(err)
	}
	if string(AppendDelta(nil, &got)) != string(b) {
		t.Fatal("delta round trip differs")
	}
	if err := DecodeDelta(append(b, 0), &got); !errors.Is(err, ErrCBORTrailing) {
		t.Fatalf("trailing byte: got %v", err)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	kr, err := NewKeyring(1, map[uint8][]byte{1: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	c := Claims{Kind: KindCustomer, ID: ID{7}, Generation: 3, IssuedAt: 100, IdleDeadline: 200, HardDeadline: 300}
	tok := kr.AppendToken(nil, &c)
	if len(tok) != TokenLen {
		t.Fatalf("token length %d, want %d", len(tok), TokenLen)
	}
	var got Claims
	if err := kr.VerifyToken(tok, 150, &got); err != nil {
		t.Fatal(err)
	}
	c.KeyID = 1
	if got != c {
		t.Fatalf("claims %+v, want %+v", got, c)
	}
}
