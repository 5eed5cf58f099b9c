package wire

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// flatJSON is an object of n integer keys "k0".."k<n-1>" (unsorted in the
// deterministic order once n > 10), then tail before the closing brace.
func flatJSON(n int, tail string) []byte {
	b := []byte{'{'}
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, `"k`...), itoa(i)...), `":1`...)
	}
	return append(append(b, tail...), '}')
}

// flatCBOR is the CBOR map of the same n keys.
func flatCBOR(n int) []byte {
	as := make([]Attr, n)
	for i := range as {
		as[i] = Attr{Key: "k" + itoa(i), Value: Int(1)}
	}
	return AppendValue(nil, Map(as...))
}

// allocPerKey returns the bytes decode allocates per key of an n-key object.
func allocPerKey(t *testing.T, n int, decode func() error) float64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := decode(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
}

// TestDecodeObjectsLinear checks that an object's cost does not grow with
// its size: a decoder that copies the object for every key allocates O(n²),
// 16 times more per key at 16k keys than at 1k.
func TestDecodeObjectsLinear(t *testing.T) {
	raised := Limits{MaxAttrs: 1 << 20}
	for _, tc := range []struct {
		name   string
		decode func(n int) func() error
	}{
		{"JSON", func(n int) func() error {
			b := flatJSON(n, "")
			return func() error { _, err := ParseValueJSONLimits(b, &raised); return err }
		}},
		{"CBOR", func(n int) func() error {
			b := flatCBOR(n)
			return func() error { _, err := DecodeValueLimits(b, &raised); return err }
		}},
	} {
		small := allocPerKey(t, 1000, tc.decode(1000))
		large := allocPerKey(t, 16000, tc.decode(16000))
		t.Logf("%s: %.0f bytes per key at 1k keys, %.0f at 16k", tc.name, small, large)
		if large > 2*small {
			t.Errorf("%s: %.0f bytes per key at 16k keys, %.0f at 1k: not linear", tc.name, large, small)
		}
	}
}

func wantFieldError(t *testing.T, what string, err error, field string, kind, syntax error) *FieldError {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("%s: error %v (%T) is no *FieldError", what, err, err)
		return nil
	}
	if fe.Field != field || !errors.Is(err, kind) || !errors.Is(err, syntax) {
		t.Errorf("%s: got %q (%v), want field %q wrapping %v and %v", what, fe.Field, err, field, kind, syntax)
	}
	if strings.Contains(err.Error(), "at byte") || strings.Contains(err.Error(), "offset") {
		t.Errorf("%s: error %q mentions a byte offset", what, err)
	}
	return fe
}

// TestLimitsWhileParsing checks that a document over a limit is refused
// where it passes it: what follows the offending item is never read, so
// garbage placed after it does not change the error.
func TestLimitsWhileParsing(t *testing.T) {
	lim := DefaultLimits
	long := strings.Repeat("é", 2001)
	deep := strings.Repeat("[", 8) + strings.Repeat("]", 8)
	tests := []struct {
		name, body, field string
		kind              error
	}{
		{"keys", string(flatJSON(257, `,"k9999":"\xff"`)), "body", ErrTooLarge},
		{"nested keys", `{"custom":{"m":` + string(flatJSON(257, ",garbage")) + `}}`, "custom.m", ErrTooLarge},
		{"list", `{"custom":{"l":[` + strings.Repeat("1,", 1024) + `"\xff"]}}`, "custom.l", ErrTooLarge},
		{"text", `{"custom":{"t":"` + long + `"}}`, "custom.t", ErrTooLarge},
		{"key", `{"custom":{"` + strings.Repeat("k", 65) + `":1}}`, "custom", ErrTooLarge},
		{"depth", `{"custom":{"d":` + deep + `}}`, "custom.d[0][0][0][0][0]", ErrInvalid},
	}
	for _, tt := range tests {
		_, err := ParseValueJSONLimits([]byte(tt.body), &lim)
		wantFieldError(t, "JSON "+tt.name, err, tt.field, tt.kind, ErrJSON)
	}
	// Without limits, the same documents parse (the depth one too: 10 < 16).
	for _, tt := range tests[:5] {
		if tt.name == "keys" || tt.name == "nested keys" || tt.name == "list" {
			continue // hold garbage on purpose
		}
		if _, err := ParseValueJSON([]byte(tt.body)); err != nil {
			t.Errorf("ParseValueJSON(%s): %v", tt.name, err)
		}
	}

	// CBOR: a map head declaring 100000 keys is refused at the head, before
	// the input is checked to hold them.
	huge := appendHead(nil, majMap, 100000)
	_, err := DecodeValueLimits(huge, &lim)
	wantFieldError(t, "CBOR keys", err, "body", ErrTooLarge, ErrCBOR)
	list := AppendValue(nil, Map(Attr{"custom", Map(Attr{"l", List(make([]Value, 1025)...)})}))
	_, err = DecodeValueLimits(list, &lim)
	wantFieldError(t, "CBOR list", err, "custom.l", ErrTooLarge, ErrCBOR)
	text := AppendValue(nil, Map(Attr{"custom", Map(Attr{"t", Text(long)})}))
	_, err = DecodeValueLimits(text, &lim)
	wantFieldError(t, "CBOR text", err, "custom.t", ErrTooLarge, ErrCBOR)
	bigText := append(appendHead(nil, majText, 9000), bytes.Repeat([]byte{'x'}, 9000)...)
	_, err = DecodeValueLimits(bigText, &lim)
	wantFieldError(t, "CBOR text head", err, "body", ErrTooLarge, ErrCBOR)
	key := AppendValue(nil, Map(Attr{"custom", Map(Attr{strings.Repeat("k", 65), Int(1)})}))
	_, err = DecodeValueLimits(key, &lim)
	wantFieldError(t, "CBOR key", err, "custom", ErrTooLarge, ErrCBOR)
	nest := Int(1)
	for i := 0; i < 6; i++ {
		nest = List(nest)
	}
	_, err = DecodeValueLimits(AppendValue(nil, Map(Attr{"custom", Map(Attr{"d", nest})})), &lim)
	if fe := wantFieldError(t, "CBOR depth", err, "custom.d[0][0][0][0][0]", ErrInvalid, ErrCBOR); fe != nil && !errors.Is(err, ErrCBORTooDeep) {
		t.Errorf("CBOR depth: %v does not wrap ErrCBORTooDeep", err)
	}
}

// TestLimitsZeroMeansDefault checks that a partly filled Limits takes the
// defaults for the rest.
func TestLimitsZeroMeansDefault(t *testing.T) {
	_, err := ParseValueJSONLimits(flatJSON(257, ""), &Limits{MaxTextLen: 10})
	wantFieldError(t, "JSON keys", err, "body", ErrTooLarge, ErrJSON)
	if _, err := ParseValueJSONLimits(flatJSON(300, ""), &Limits{MaxAttrs: 300}); err != nil {
		t.Errorf("raised MaxAttrs: %v", err)
	}
}

// TestJSONErrorsNameTheField: every value error names the path of the value
// and its reason, never a byte offset.
func TestJSONErrorsNameTheField(t *testing.T) {
	tests := []struct {
		body, field, reason string
	}{
		{`{"custom":{"name":"a` + "\xff" + `"}}`, "custom.name", "text is not valid UTF-8"},
		{`{"custom":{"list":[1,2,3,99999999999999999999]}}`, "custom.list[3]", "integer beyond int64"},
		{`{"custom":{"f":1e999}}`, "custom.f", "number beyond the float64 range"},
		{`{"custom":{"price":{"$decimal":"1.2.3"}}}`, "custom.price", "$decimal is not a decimal number"},
		{`{"custom":{"at":{"$time":"yesterday"}}}`, "custom.at", "$time is not an RFC 3339 time"},
		{`{"custom":{"a":1,"b":2,"a":3}}`, "custom.a", "duplicate key"},
		{`{"context":{"custom":{"name":"` + "\xc3\x28" + `"}}}`, "context.custom.name", "text is not valid UTF-8"},
		{`{"custom":{"` + "\xff" + `":1}}`, "custom", "key is not valid UTF-8"},
		{`{"custom":{"s":"a` + "\x01" + `"}}`, "custom.s", "control character in a string"},
		{`{"custom":{"l":[1,tru]}}`, "custom.l[1]", "unexpected character"},
		{`{"custom":{"a":1 "b":2}}`, "custom", "expected ',' or '}'"},
		{``, "body", "unexpected end of input"},
		{`{"a":1}x`, "body", "trailing data after the value"},
		{`{"":`, `""`, "unexpected end of input"},
		{`{"custom":{"":{"":[1,"` + "\xff" + `"]}}}`, `custom."".""[1]`, "text is not valid UTF-8"},
	}
	for _, tt := range tests {
		_, err := ParseValueJSONLimits([]byte(tt.body), &DefaultLimits)
		if fe := wantFieldError(t, tt.body, err, tt.field, ErrInvalid, ErrJSON); fe != nil && fe.Reason != tt.reason {
			t.Errorf("%s: reason %q, want %q", tt.body, fe.Reason, tt.reason)
		}
	}
}

func TestCBORErrorsNameTheField(t *testing.T) {
	s := sampleSession(t)
	enc := AppendSession(nil, s)
	// The sample's custom.color is "red": make it invalid UTF-8.
	bad := bytes.Replace(bytes.Clone(enc), []byte("\x63red"), []byte("\x63r\xffd"), 1)
	var got Session
	err := DecodeSessionLimits(bad, &got, &DefaultLimits)
	wantFieldError(t, "session text", err, "custom.color", ErrInvalid, ErrCBOR)
	if !errors.Is(err, ErrCBORInvalidUTF8) {
		t.Errorf("%v does not wrap ErrCBORInvalidUTF8", err)
	}
	// The sample's public.prefs.sizes[0] is 38 (0x18 0x26): make the head
	// non-minimal (0x19 0x00 0x26 would change the length, so use a
	// reserved additional info instead).
	bad = bytes.Replace(bytes.Clone(enc), []byte{0x18, 0x26}, []byte{0x1c, 0x26}, 1)
	err = DecodeSessionLimits(bad, &got, &DefaultLimits)
	wantFieldError(t, "session nested", err, "public.prefs.sizes[0]", ErrInvalid, ErrCBOR)
	err = DecodeSession(append(bytes.Clone(enc), 0), &got)
	wantFieldError(t, "session trailing", err, "session", ErrInvalid, ErrCBOR)

	dl := Delta{ID: ID{1}, BaseVersion: 1, Version: 2, Ops: []Op{
		{Code: OpTouch, Idle: 5},
		{Code: OpSetAttr, NS: NamespacePublic, Key: "l", Value: List(Int(1), Text("oops"))},
	}}
	denc := AppendDelta(nil, &dl)
	bad = bytes.Replace(bytes.Clone(denc), []byte("\x64oops"), []byte("\x64oo\xffs"), 1)
	var got2 Delta
	err = DecodeDeltaLimits(bad, &got2, &DefaultLimits)
	wantFieldError(t, "delta value", err, "ops[1].value[1]", ErrInvalid, ErrCBOR)
	bt := AppendBatch(nil, &Batch{Cursor: "c", Deltas: []Delta{dl, dl}})
	bad = bytes.Replace(bytes.Clone(bt), []byte("\x64oops"), []byte("\x64oo\xffs"), 1)
	var got3 Batch
	err = DecodeBatchLimits(bad, &got3, &DefaultLimits)
	wantFieldError(t, "batch value", err, "deltas[0].ops[1].value[1]", ErrInvalid, ErrCBOR)
	ts := AppendTouches(nil, []Touch{{ID: ID{1}, Kind: KindAnonymous}, {ID: ID{2}, Kind: KindCustomer}})
	bad = bytes.Clone(ts)
	bad[len(bad)-5] = 0x07 // second touch's kind: [id, kind, generation, lastSeen, idle, hard]
	_, err = DecodeTouchesLimits(bad, nil, &DefaultLimits)
	wantFieldError(t, "touch kind", err, "touches[1].kind", ErrInvalid, ErrCBOR)
}

// TestSessionAttributeTotal: a session holding more than MaxAttrs attributes
// over its namespaces is refused at the namespace that passes the total.
func TestSessionAttributeTotal(t *testing.T) {
	s := &Session{ID: ID{1}, Kind: KindAnonymous}
	for i := 0; i < 200; i++ {
		s.Attrs[NamespaceCustom] = append(s.Attrs[NamespaceCustom], Attr{Key: "c" + itoa(1000+i), Value: Int(1)})
		s.Attrs[NamespacePublic] = append(s.Attrs[NamespacePublic], Attr{Key: "p" + itoa(1000+i), Value: Int(1)})
	}
	enc := AppendSession(nil, s)
	var got Session
	err := DecodeSessionLimits(enc, &got, &DefaultLimits)
	wantFieldError(t, "session total", err, "public", ErrTooLarge, ErrCBOR)
	if err := DecodeSessionLimits(enc, &got, &Limits{MaxAttrs: 400}); err != nil || !got.Equal(s) {
		t.Errorf("raised limits: %v", err)
	}
	if err := DecodeSession(enc, &got); err != nil {
		t.Errorf("no limits: %v", err)
	}
}

func TestDeltaBatchTouchCounts(t *testing.T) {
	lim := Limits{MaxAttrs: 2, MaxBatch: 3}
	l := lim.WithDefaults()
	ops := make([]Op, l.MaxOps()+1)
	for i := range ops {
		ops[i] = Op{Code: OpTouch}
	}
	dl := Delta{ID: ID{1}, Version: 1, Ops: ops}
	var got Delta
	err := DecodeDeltaLimits(AppendDelta(nil, &dl), &got, &lim)
	wantFieldError(t, "ops", err, "ops", ErrTooLarge, ErrCBOR)
	dl.Ops = ops[:l.MaxOps()]
	if err := DecodeDeltaLimits(AppendDelta(nil, &dl), &got, &lim); err != nil {
		t.Errorf("MaxOps ops: %v", err)
	}
	small := Delta{ID: ID{1}, Version: 1, Ops: ops[:1]}
	var bt Batch
	err = DecodeBatchLimits(AppendBatch(nil, &Batch{Cursor: "x", Deltas: []Delta{small, small, small, small}}), &bt, &lim)
	wantFieldError(t, "deltas", err, "deltas", ErrTooLarge, ErrCBOR)
	_, err = DecodeTouchesLimits(AppendTouches(nil, make([]Touch, 4)), nil, &lim)
	wantFieldError(t, "touches", err, "touches", ErrTooLarge, ErrCBOR)
	if ts, err := DecodeTouchesLimits(AppendTouches(nil, make([]Touch, 3)), nil, &lim); err != nil || len(ts) != 3 {
		t.Errorf("3 touches: %d, %v", len(ts), err)
	}
	key := Delta{ID: ID{1}, Version: 1, Ops: []Op{{Code: OpDeleteAttr, Key: strings.Repeat("k", 65)}}}
	err = DecodeDeltaLimits(AppendDelta(nil, &key), &got, &lim)
	wantFieldError(t, "op key", err, "ops[0].key", ErrTooLarge, ErrCBOR)
}

func TestContextOpsAttributeTotal(t *testing.T) {
	lim := Limits{MaxAttrs: 3}.WithDefaults()
	v, err := ParseValueJSONLimits([]byte(`{"custom":{"a":1,"b":2,"gone":null},"public":{"c":3,"d":4}}`), &lim)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ContextOps(v, false, &lim)
	wantFieldError(t, "sets", err, "public.d", ErrTooLarge, ErrTooLarge)
}

func TestValidateValueCounts(t *testing.T) {
	lim := Limits{MaxAttrs: 2, MaxListLen: 2}.WithDefaults()
	if err := lim.ValidateValue("v", List(Int(1), Int(2), Int(3))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("long list: %v", err)
	}
	if err := lim.ValidateValue("v", Map(Attr{"a", Int(1)}, Attr{"b", Int(1)}, Attr{"c", Int(1)})); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large map: %v", err)
	}
	if err := lim.ValidateValue("v", List(Map(Attr{"a", Int(1)}, Attr{"b", Int(1)}), Int(2))); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}

func TestMapLaterDuplicatesWin(t *testing.T) {
	m := Map(Attr{"b", Int(1)}, Attr{"aa", Int(2)}, Attr{"b", Int(3)}, Attr{"a", Int(4)}, Attr{"aa", Int(5)})
	want := Attrs{{"a", Int(4)}, {"b", Int(3)}, {"aa", Int(5)}}
	if !m.Map.Equal(want) {
		t.Fatalf("Map = %+v, want %+v", m.Map, want)
	}
}

func TestPathNames(t *testing.T) {
	long := strings.Repeat("x", 63) + "é" + strings.Repeat("y", 100)
	got := fieldName("body", []pathSeg{{key: "custom", index: -1}, {key: long, index: -1}, {index: 2}, {key: "a\xffb", index: -1}})
	want := "custom." + strings.Repeat("x", 63) + "….a\uFFFDb"
	want = strings.Replace(want, "….", "…[2].", 1)
	if got != want {
		t.Fatalf("path %q, want %q", got, want)
	}
}
