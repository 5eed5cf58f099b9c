package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/internal/fuzzbudget"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	tooDeep := bytes.Repeat([]byte{0x81}, 40) // [[[[...
	tooDeep = append(tooDeep, 0x01)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrCBORTruncated},
		{"trailing byte", "01 00", ErrCBORTrailing},
		{"indefinite array", "9f 01 ff", ErrCBORIndefinite},
		{"indefinite text", "7f 61 61 ff", ErrCBORIndefinite},
		{"indefinite map", "bf 61 61 01 ff", ErrCBORIndefinite},
		{"huge text length", "7b 7fffffffffffffff 61", ErrCBORTooLong},
		{"huge array length", "9b 0000000100000000 01", ErrCBORTooLong},
		{"huge map length", "ba ffffffff 01 01", ErrCBORTooLong},
		{"array longer than input", "83 01 02", ErrCBORTooLong},
		{"map entry cut short", "a1 01", ErrCBORTooLong},
		{"item cut short", "82 01 19", ErrCBORTruncated},
		{"truncated head", "19 01", ErrCBORTruncated},
		{"non-minimal uint", "18 05", ErrCBORNotCanonical},
		{"non-minimal length", "79 0001 61", ErrCBORNotCanonical},
		{"reserved info", "1c", ErrCBORType},
		{"unsorted map keys", "a2 62 6262 01 61 61 02", ErrCBORUnsortedKeys},
		{"duplicate map keys", "a2 61 61 01 61 61 02", ErrCBORUnsortedKeys},
		{"invalid utf-8", "62 c3 28", ErrCBORInvalidUTF8},
		{"byte string value", "41 00", ErrCBORType},
		{"unknown tag", "c2 41 01", ErrCBORType},
		{"decimal with three items", "c4 83 01 02 03", ErrCBORType},
		{"int out of range", "1b ffffffffffffffff", ErrCBOROutOfRange},
		{"undefined", "f7", ErrCBORType},
		{"deep nesting", hex.EncodeToString(tooDeep), ErrCBORTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeValue(mustHex(t, tt.in))
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrCBOR) {
				t.Fatalf("DecodeValue(%s) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestDecodeStructureRejects(t *testing.T) {
	s := sampleSession(t)
	enc := AppendSession(nil, s)
	dl := Delta{ID: s.ID, BaseVersion: 1, Version: 2, At: 5, Ops: []Op{{Code: OpTouch, Idle: 9}}}
	denc := AppendDelta(nil, &dl)
	tests := []struct {
		name   string
		decode func([]byte) error
		in     []byte
		want   error
	}{
		{"session trailing", func(b []byte) error { var s Session; return DecodeSession(b, &s) }, append(bytes.Clone(enc), 0xf6), ErrCBORTrailing},
		{"session truncated", func(b []byte) error { var s Session; return DecodeSession(b, &s) }, enc[:len(enc)-3], ErrCBORTruncated},
		{"session without id", func(b []byte) error { var s Session; return DecodeSession(b, &s) }, []byte{0xa1, 0x02, 0x01}, ErrCBORType},
		{"session id too short", func(b []byte) error { var s Session; return DecodeSession(b, &s) }, []byte{0xa1, 0x01, 0x41, 0x00}, ErrCBORType},
		{"session kind out of range", func(b []byte) error { var s Session; return DecodeSession(b, &s) }, append(append([]byte{0xa2, 0x01, 0x50}, make([]byte, 16)...), 0x02, 0x09), ErrCBOROutOfRange},
		{"delta trailing", func(b []byte) error { var d Delta; return DecodeDelta(b, &d) }, append(bytes.Clone(denc), 0), ErrCBORTrailing},
		{"delta unknown op", func(b []byte) error { var d Delta; return DecodeDelta(b, &d) }, bytes.Replace(bytes.Clone(denc), []byte{0x82, 0x08, 0x09}, []byte{0x82, 0x0f, 0x09}, 1), ErrCBORUnknownOpcode},
		{"delta op arity", func(b []byte) error { var d Delta; return DecodeDelta(b, &d) }, bytes.Replace(bytes.Clone(denc), []byte{0x81, 0x82, 0x08, 0x09}, []byte{0x81, 0x83, 0x08, 0x09, 0x09}, 1), ErrCBORType},
		{"batch of garbage", func(b []byte) error { var bt Batch; return DecodeBatch(b, &bt) }, []byte{0xa1, 0x02, 0x81, 0, 0, 0, 0, 0, 0, 0, 0}, ErrCBORType},
		{"batch huge deltas", func(b []byte) error { var bt Batch; return DecodeBatch(b, &bt) }, []byte{0xa1, 0x02, 0x9a, 0x10, 0, 0, 0}, ErrCBORTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.decode(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("decode(%x) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestUnknownKeysAreSkipped(t *testing.T) {
	s := sampleSession(t)
	enc := AppendSession(nil, s)
	// Add key 99 → {"x": [1]} at the end of the map (keys ascend, so it is last).
	ext := bytes.Clone(enc)
	ext[0]++ // one more entry (the sample has fewer than 23)
	ext = append(ext, 0x18, 99, 0xa1, 0x61, 'x', 0x81, 0x01)
	var got Session
	if err := DecodeSession(ext, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(s) {
		t.Fatal("unknown key changed the session")
	}
}

func TestFloatsShortest(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "f90000"},
		{math.Copysign(0, -1), "f98000"},
		{1.5, "f93e00"},
		{65504, "f97bff"},
		{5.960464477539063e-8, "f90001"}, // smallest half subnormal
		{100000, "fa47c35000"},
		{3.4028234663852886e+38, "fa7f7fffff"},
		{1.1, "fb3ff199999999999a"},
		{math.Inf(1), "f97c00"},
		{math.Inf(-1), "f9fc00"},
		{math.NaN(), "f97e00"},
	}
	for _, tt := range tests {
		got := hex.EncodeToString(appendFloat(nil, tt.f))
		if got != tt.want {
			t.Errorf("appendFloat(%v) = %s, want %s", tt.f, got, tt.want)
			continue
		}
		v, err := DecodeValue(mustHex(t, tt.want))
		if err != nil || !(v.Float == tt.f || math.IsNaN(tt.f) && math.IsNaN(v.Float)) || math.Signbit(v.Float) != math.Signbit(tt.f) {
			t.Errorf("decode %s = %v, %v", tt.want, v.Float, err)
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	values := []Value{
		Text(""), Text("héllo"), Int(0), Int(-1), Int(math.MinInt64), Int(math.MaxInt64),
		Float(-0.5), Bool(true), Bool(false), Time(0), Time(-1500), Time(1_700_000_000_001),
		Decimal(1999, -2), Decimal(-5, 3), List(), List(Int(1), List(Text("x"))), Map(),
		Map(Attr{"b", Int(1)}, Attr{"aa", Int(2)}, Attr{"a", Int(3)}),
	}
	for _, v := range values {
		enc := AppendValue(nil, v)
		got, err := DecodeValue(enc)
		if err != nil {
			t.Errorf("%x: %v", enc, err)
			continue
		}
		if !got.Equal(v) {
			t.Errorf("value %+v came back as %+v", v, got)
		}
		js := AppendValueJSON(nil, v)
		back, err := ParseValueJSON(js)
		if err != nil || !back.Equal(v) {
			t.Errorf("JSON %s came back as %+v, %v", js, back, err)
		}
	}
}

// TestDecodeMemoryBound checks that decoding allocates at most a fixed
// multiple of the input, whatever the input declares.
func TestDecodeMemoryBound(t *testing.T) {
	// The worst case: a list of one-byte items, each of which becomes a Value.
	n := 4000
	in := append(appendHead(nil, majArray, uint64(n)), bytes.Repeat([]byte{0x01}, n)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := DecodeValue(in); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	ratio := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(in))
	if ratio > MaxDecodeAllocRatio {
		t.Fatalf("decoding %d bytes allocated %.0f× the input, want ≤ %d×", len(in), ratio, MaxDecodeAllocRatio)
	}
	t.Logf("worst case: %.0f bytes allocated per input byte", ratio)
}

func FuzzDecodeSession(f *testing.F) {
	f.Add(AppendSession(nil, sampleSession(f)))
	f.Add([]byte{0xa1, 0x01, 0x50})
	f.Add(append(AppendSession(nil, sampleSession(f)), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > fuzzSizeCap {
			return
		}
		fuzzbudget.Check(t, len(b), func() {
			var limited Session
			limErr := DecodeSessionLimits(b, &limited, &DefaultLimits)
			var s Session
			if err := DecodeSession(b, &s); err != nil {
				checkDecodeError(t, err, ErrCBOR)
				if limErr == nil {
					t.Fatalf("accepted with limits, refused without: %v", err)
				}
				return
			}
			if limErr != nil {
				checkDecodeError(t, limErr, ErrCBOR)
			} else if limited.NumAttrs() > DefaultLimits.MaxAttrs || !limited.Equal(&s) {
				t.Fatalf("the limited decode accepted %d attributes or differs", limited.NumAttrs())
			}
			// What decodes must survive a round trip of its own encoding.
			var again Session
			if err := DecodeSession(AppendSession(nil, &s), &again); err != nil || !again.Equal(&s) {
				t.Fatalf("re-decoding failed: %v", err)
			}
		})
	})
}

func FuzzDecodeBatch(f *testing.F) {
	s := sampleSession(f)
	f.Add(AppendBatch(nil, &Batch{Cursor: "42", Deltas: []Delta{
		{ID: s.ID, Version: 1, At: 1, Ops: []Op{{Code: OpStart, Kind: KindAnonymous, Generation: 1}}},
		{ID: s.ID, BaseVersion: 1, Version: 2, At: 2, Ops: []Op{{Code: OpSetAttr, Key: "k", Value: Decimal(1, -1)}, {Code: OpEnd, Reason: EndRevoked}}},
	}, Reset: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > fuzzSizeCap {
			return
		}
		fuzzbudget.Check(t, len(b), func() {
			var bt Batch
			if err := DecodeBatch(b, &bt); err != nil {
				checkDecodeError(t, err, ErrCBOR)
				return
			}
			var again Batch
			if err := DecodeBatch(AppendBatch(nil, &bt), &again); err != nil {
				t.Fatalf("re-decoding failed: %v", err)
			}
			// The edge's path: a batch decoded with the limits, its deltas
			// applied. Applying must fail cleanly or succeed, never panic.
			if err := DecodeBatchLimits(b, &bt, &DefaultLimits); err != nil {
				checkDecodeError(t, err, ErrCBOR)
				return
			}
			var cur *Session
			for i := range bt.Deltas {
				if next, err := Apply(cur, &bt.Deltas[i], &DefaultLimits); err == nil {
					cur = next
				}
			}
		})
	})
}

func TestTouchesRoundTrip(t *testing.T) {
	ts := []Touch{{ID: ID{1}, Kind: KindAnonymous, Generation: 1, LastSeen: 10, IdleDeadline: 20, HardDeadline: 30},
		{ID: ID{2}, Kind: KindCustomer, Generation: 4, LastSeen: -1},
		{ID: ID{3}, Kind: KindAnonymous, Generation: 1, LastSeen: 5, HardDeadline: 9,
			Device: Device{UserAgent: "Mozilla/5.0", Addr: "192.0.2.0/24", Site: "DE"},
			Init: []Op{{Code: OpSetField, Field: FieldCurrency, Value: Text("EUR")},
				{Code: OpSetAttr, NS: NamespacePublic, Key: "utm_source", Value: Text("news")}}},
		{ID: ID{4}, Kind: KindAnonymous, Generation: 1, Device: Device{Site: "DE"}}}
	b := AppendTouches(nil, ts)
	got, err := DecodeTouches(b, nil)
	if err != nil || !reflect.DeepEqual(got, ts) {
		t.Fatalf("DecodeTouches = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(bytes.Clone(b), 0), {0xa1, 0x01, 0x81, 0x81, 0x01}} {
		if _, err := DecodeTouches(bad, nil); !errors.Is(err, ErrCBOR) {
			t.Errorf("DecodeTouches(%x) = %v, want ErrCBOR", bad, err)
		}
	}
}

// TestSessionMetadataRoundTrip covers the metadata an origin keeps beside
// the context: modification time, the session's own lifetimes and the
// devices an edge saw.
func TestSessionMetadataRoundTrip(t *testing.T) {
	id := ID{7, 7}
	s, err := Apply(nil, &Delta{ID: id, Version: 1, At: 1000, Ops: []Op{
		{Code: OpStart, Kind: KindAnonymous, Generation: 1, Idle: 301_000, Hard: 7_000_000},
		{Code: OpLifetime, Idle: 300_000, Hard: 6_999_000},
		{Code: OpDevice, Device: Device{UserAgent: "Mozilla/5.0", Addr: "192.0.2.0/24", Site: "DE"}},
	}}, &DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	s, err = Apply(s, &Delta{ID: id, BaseVersion: 1, Version: 2, At: 2000, Ops: []Op{
		{Code: OpDevice, Device: Device{UserAgent: "curl/8", Site: "DE"}}}}, &DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if s.Modified != 2000 || s.IdleTimeout != 300_000 || s.HardTimeout != 6_999_000 ||
		s.FirstDevice.UserAgent != "Mozilla/5.0" || s.Device.UserAgent != "curl/8" {
		t.Fatalf("after apply: %+v", s)
	}
	touched, err := Apply(s, &Delta{ID: id, BaseVersion: 2, Version: 3, At: 3000, Ops: []Op{{Code: OpTouch, Idle: 4000}}}, &DefaultLimits)
	if err != nil || touched.Modified != 2000 {
		t.Fatalf("a touch moved the modification time: %+v, %v", touched, err)
	}
	var back Session
	if err := DecodeSession(AppendSession(nil, s), &back); err != nil || !back.Equal(s) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	js := string(AppendSessionJSON(nil, s, AllNamespaces))
	for _, want := range []string{`"modified":"1970-01-01T00:00:02.000Z"`, `"idleTimeout":"5m0s"`, `"hardTimeout":"1h56m39s"`,
		`"firstDevice":{"userAgent":"Mozilla/5.0","addr":"192.0.2.0/24","site":"DE"}`, `"device":{"userAgent":"curl/8","addr":"","site":"DE"}`} {
		if !strings.Contains(js, want) {
			t.Errorf("JSON lacks %s: %s", want, js)
		}
	}
	long := Device{UserAgent: strings.Repeat("x", MaxDeviceText+1)}
	if _, err := Apply(s, &Delta{ID: id, BaseVersion: 2, Version: 3, Ops: []Op{{Code: OpDevice, Device: long}}}, &DefaultLimits); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a long user agent: %v", err)
	}
	if _, err := Apply(s, &Delta{ID: id, BaseVersion: 2, Version: 3, Ops: []Op{{Code: OpLifetime, Idle: -1}}}, &DefaultLimits); err == nil {
		t.Fatal("a negative lifetime applied")
	}
}

func TestForwardView(t *testing.T) {
	s := &Session{ID: ID{1}, Kind: KindAnonymous, Generation: 1, Version: 3}
	s.Fields[FieldCurrency] = Text("EUR")
	s.Attrs[NamespacePrivacy] = Attrs{{Key: "email", Value: Text("a@b")}}
	seg := AppendSegment(nil, s)
	b := AppendForwardView(nil, s, 1<<NamespacePublic, seg)
	var got Session
	segment, err := DecodeForwardView(b, &got, &DefaultLimits)
	if err != nil || segment != string(seg) || got.Fields[FieldCurrency].Text != "EUR" || len(got.Attrs[NamespacePrivacy]) != 0 {
		t.Fatalf("view %+v, segment %q, %v", got, segment, err)
	}
	// A plain session decoder skips the segment; a view without one has none.
	if err := DecodeSession(b, &got); err != nil {
		t.Fatal(err)
	}
	if segment, err := DecodeForwardView(AppendSessionView(nil, s, AllNamespaces), &got, nil); err != nil || segment != "" {
		t.Fatalf("segment %q, %v", segment, err)
	}
}
