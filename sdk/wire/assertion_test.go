package wire

import (
	"errors"
	"testing"
	"time"
)

var (
	testSecret1 = []byte("assertion secret one, 32 bytes!!")
	testSecret2 = []byte("assertion secret two, 32 bytes!!")
)

func testAssertion() (*AssertionKeys, Assertion, []byte) {
	ak, err := NewAssertionKeys(1, map[uint8][]byte{1: testSecret1})
	if err != nil {
		panic(err)
	}
	ctx := []byte("pQFQAAECAwQFBgcICQoLDA0ODwIBAwEEAQ")
	a := Assertion{Kind: KindCustomer, Status: AssertOK, ID: ID{1, 2, 3}, Generation: 4, Version: 9,
		IssuedAt: 1_767_225_600_000, ContextDigest: ak.ContextDigest(ctx)}
	return ak, a, ctx
}

func TestAssertionRoundTrip(t *testing.T) {
	ak, a, ctx := testAssertion()
	text := ak.AppendAssertion(nil, &a, []byte("shop.example"), []byte("/cart?x=1"))
	if len(text) != AssertionLen {
		t.Fatalf("length %d, want %d", len(text), AssertionLen)
	}
	var got Assertion
	if err := ak.VerifyAssertion(text, []byte("shop.example"), []byte("/cart?x=1"), ctx, time.UnixMilli(a.IssuedAt+29_000), 30*time.Second, &got); err != nil {
		t.Fatal(err)
	}
	a.KeyID = 1
	if got != a {
		t.Fatalf("verified %+v, signed %+v", got, a)
	}
}

func TestAssertionRejects(t *testing.T) {
	ak, a, ctx := testAssertion()
	authority, path := []byte("shop.example"), []byte("/cart?x=1")
	good := string(ak.AppendAssertion(nil, &a, authority, path))
	at := time.UnixMilli(a.IssuedAt)
	other, _ := NewAssertionKeys(1, map[uint8][]byte{1: testSecret2})
	seven, _ := NewAssertionKeys(7, map[uint8][]byte{7: testSecret1})
	flip := func(i int) string {
		b := []byte(good)
		// Change a base64 character to another valid one.
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	degraded := a
	degraded.Status, degraded.ContextDigest = AssertDegraded, [16]byte{}
	tests := []struct {
		name            string
		keys            *AssertionKeys
		text            string
		authority, path string
		ctx             []byte
		at              time.Time
		want            error
	}{
		{"other path", ak, good, "shop.example", "/cart?x=2", ctx, at, ErrAssertionBadSignature},
		{"path without query", ak, good, "shop.example", "/cart", ctx, at, ErrAssertionBadSignature},
		{"other authority", ak, good, "evil.example", "/cart?x=1", ctx, at, ErrAssertionBadSignature},
		{"authority and path shifted", ak, good, "shop.example/", "cart?x=1", ctx, at, ErrAssertionBadSignature},
		{"other secret", other, good, "shop.example", "/cart?x=1", ctx, at, ErrAssertionBadSignature},
		{"kind flipped", ak, flip(3), "shop.example", "/cart?x=1", ctx, at, ErrAssertionBadSignature},
		{"id flipped", ak, flip(10), "shop.example", "/cart?x=1", ctx, at, ErrAssertionBadSignature},
		{"version flipped", ak, flip(35), "shop.example", "/cart?x=1", ctx, at, ErrAssertionBadSignature},
		{"tag flipped", ak, flip(90), "shop.example", "/cart?x=1", ctx, at, ErrAssertionBadSignature},
		{"context changed", ak, good, "shop.example", "/cart?x=1", append([]byte("x"), ctx...), at, ErrAssertionContext},
		{"context removed", ak, good, "shop.example", "/cart?x=1", nil, at, ErrAssertionContext},
		{"context added", ak, string(ak.AppendAssertion(nil, &degraded, authority, path)), "shop.example", "/cart?x=1", ctx, at, ErrAssertionContext},
		{"too old", ak, good, "shop.example", "/cart?x=1", ctx, at.Add(31 * time.Second), ErrAssertionStale},
		{"from the future", ak, good, "shop.example", "/cart?x=1", ctx, at.Add(-31 * time.Second), ErrAssertionStale},
		{"truncated", ak, good[:AssertionLen-1], "shop.example", "/cart?x=1", ctx, at, ErrAssertionMalformed},
		{"padded", ak, good + "=", "shop.example", "/cart?x=1", ctx, at, ErrAssertionMalformed},
		{"not base64url", ak, "+" + good[1:], "shop.example", "/cart?x=1", ctx, at, ErrAssertionMalformed},
		{"empty", ak, "", "shop.example", "/cart?x=1", ctx, at, ErrAssertionMalformed},
		{"version byte", ak, flip(0), "shop.example", "/cart?x=1", ctx, at, ErrAssertionMalformed},
		{"unknown key", ak, string(seven.AppendAssertion(nil, &a, authority, path)), "shop.example", "/cart?x=1", ctx, at, ErrAssertionUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Assertion
			err := tt.keys.VerifyAssertion([]byte(tt.text), []byte(tt.authority), []byte(tt.path), tt.ctx, tt.at, 30*time.Second, &got)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAssertionKeyRotation(t *testing.T) {
	_, a, ctx := testAssertion()
	oldKeys, _ := NewAssertionKeys(1, map[uint8][]byte{1: testSecret1})
	both, _ := NewAssertionKeys(2, map[uint8][]byte{1: testSecret1, 2: testSecret2})
	newOnly, _ := NewAssertionKeys(2, map[uint8][]byte{2: testSecret2})
	at := time.UnixMilli(a.IssuedAt)
	sign := func(k *AssertionKeys) []byte {
		b := a
		b.ContextDigest = k.ContextDigest(ctx)
		return k.AppendAssertion(nil, &b, []byte("h"), []byte("/"))
	}
	var got Assertion
	if err := both.VerifyAssertion(sign(oldKeys), []byte("h"), []byte("/"), ctx, at, time.Second, &got); err != nil {
		t.Fatalf("an app holding both keys refuses the old key: %v", err)
	}
	if err := both.VerifyAssertion(sign(both), []byte("h"), []byte("/"), ctx, at, time.Second, &got); err != nil || got.KeyID != 2 {
		t.Fatalf("new key: %v, key id %d", err, got.KeyID)
	}
	if err := newOnly.VerifyAssertion(sign(oldKeys), []byte("h"), []byte("/"), ctx, at, time.Second, &got); !errors.Is(err, ErrAssertionUnknownKey) {
		t.Fatalf("retired key: %v", err)
	}
}

func TestAssertionLongBindings(t *testing.T) {
	ak, a, ctx := testAssertion()
	long := make([]byte, maxBound+1)
	text := ak.AppendAssertion(nil, &a, []byte("h"), long)
	var got Assertion
	if err := ak.VerifyAssertion(text, []byte("h"), long, ctx, time.UnixMilli(a.IssuedAt), time.Second, &got); err == nil {
		t.Fatal("accepted an assertion over a path longer than 64 KiB")
	}
}

func TestAssertionAllocs(t *testing.T) {
	ak, a, ctx := testAssertion()
	authority, path := []byte("shop.example"), []byte("/cart?x=1")
	buf := make([]byte, 0, AssertionLen)
	text := ak.AppendAssertion(nil, &a, authority, path)
	at := time.UnixMilli(a.IssuedAt)
	var got Assertion
	n := testing.AllocsPerRun(100, func() {
		buf = ak.AppendAssertion(buf[:0], &a, authority, path)
		_ = ak.ContextDigest(ctx)
		if ak.VerifyAssertion(text, authority, path, ctx, at, time.Second, &got) != nil {
			panic("verify")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per sign and verify", n)
	}
}

func TestHint(t *testing.T) {
	kr1, _ := NewKeyring(1, map[uint8][]byte{1: testSecret1})
	kr12, _ := NewKeyring(2, map[uint8][]byte{1: testSecret1, 2: testSecret2})
	id := ID{9, 9}
	h := kr1.AppendHint(nil, id, 3, 41)
	if len(h) != HintLen {
		t.Fatalf("length %d, want %d", len(h), HintLen)
	}
	if v, ok := PeekHintVersion(h); !ok || v != 41 {
		t.Fatalf("peek = %d, %v", v, ok)
	}
	for _, kr := range []*Keyring{kr1, kr12} {
		if v, err := kr.VerifyHint(h, id, 3); err != nil || v != 41 {
			t.Fatalf("verify = %d, %v", v, err)
		}
	}
	forged := append([]byte(nil), h...)
	forged[5] ^= 1 // the version
	for name, tt := range map[string]struct {
		text []byte
		id   ID
		gen  uint32
	}{
		"other session":    {h, ID{9, 8}, 3},
		"other generation": {h, id, 4},
		"version changed":  {forged, id, 3},
		"truncated":        {h[:HintLen-1], id, 3},
		"a token":          {kr1.AppendToken(nil, &Claims{Kind: KindAnonymous, ID: id, Generation: 3}), id, 3},
	} {
		if _, err := kr1.VerifyHint(tt.text, tt.id, tt.gen); !errors.Is(err, ErrBadHint) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	n := testing.AllocsPerRun(100, func() {
		if _, err := kr1.VerifyHint(h, id, 3); err != nil {
			panic(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per hint verify", n)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		json string
		want Duration
		ok   bool
	}{
		{`"90s"`, Duration(90 * time.Second), true},
		{`"30m"`, Duration(30 * time.Minute), true},
		{`"none"`, NoTimeout, true},
		{`10`, Duration(10 * time.Second), true},
		{`1.5`, Duration(1500 * time.Millisecond), true},
		{`0`, 0, true},
		{`"0s"`, 0, true},
		{`-1`, 0, false},
		{`"-5s"`, 0, false},
		{`"10 minutes"`, 0, false},
		{`true`, 0, false},
		{`null`, 0, false},
		{`{}`, 0, false},
		{`1e300`, 0, false},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalJSON([]byte(tt.json))
		if (err == nil) != tt.ok || (tt.ok && d != tt.want) {
			t.Errorf("%s: %v, %v; want %v, ok %v", tt.json, d, err, tt.want, tt.ok)
		}
		if tt.ok {
			b, _ := d.MarshalJSON()
			var again Duration
			if err := again.UnmarshalJSON(b); err != nil || again != d {
				t.Errorf("%s: %s does not read back (%v)", tt.json, b, err)
			}
		}
	}
	if Duration(0).Or(Duration(time.Second)) != Duration(time.Second) || NoTimeout.Or(1) != NoTimeout {
		t.Fatal("Or")
	}
	if NoTimeout.Std() != 0 || !NoTimeout.IsNone() {
		t.Fatal("none")
	}
}
