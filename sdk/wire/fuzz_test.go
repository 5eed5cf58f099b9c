package wire

import (
	"errors"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/internal/fuzzbudget"
)

// The decoders' fuzz targets hold every input within fuzzSizeCap to the
// time budget of fuzzbudget (50 ms): decoding untrusted input must cost
// time linear in its size, so a slow input is a finding like a crash. Found
// inputs stay under testdata/fuzz as seeds.

// fuzzSizeCap is the largest body a decoder is handed in production (the
// origin's request body cap); larger inputs are outside the budget's scope.
const fuzzSizeCap = 256 << 10

// checkDecodeError holds a decoding error to its contract: a *FieldError
// naming a field, wrapping syntax (ErrJSON or ErrCBOR) and ErrInvalid or
// ErrTooLarge, without byte offsets.
func checkDecodeError(t *testing.T, err, syntax error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field == "" || fe.Reason == "" {
		t.Fatalf("error %v (%T) is no *FieldError naming a field", err, err)
	}
	if !errors.Is(err, syntax) || !(errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge)) {
		t.Fatalf("error %v does not wrap %v and ErrInvalid or ErrTooLarge", err, syntax)
	}
	if strings.Contains(err.Error(), "at byte") {
		t.Fatalf("error %v names a byte offset", err)
	}
}

// checkWithin fails when v passes a limit the limited decoders enforce;
// depth is the nesting allowed from v down.
func checkWithin(t *testing.T, v Value, lim *Limits, depth int) {
	t.Helper()
	switch v.Type {
	case TypeText:
		if n := len([]rune(v.Text)); n > lim.MaxTextLen {
			t.Fatalf("accepted a text of %d characters", n)
		}
	case TypeList, TypeMap:
		if depth <= 0 {
			t.Fatalf("accepted nesting beyond the limit")
		}
		if len(v.List) > lim.MaxListLen || len(v.Map) > lim.MaxAttrs {
			t.Fatalf("accepted a list of %d items or a map of %d keys", len(v.List), len(v.Map))
		}
		for _, e := range v.List {
			checkWithin(t, e, lim, depth-1)
		}
		for i, a := range v.Map {
			if len(a.Key) > lim.MaxKeyLen {
				t.Fatalf("accepted a key of %d bytes", len(a.Key))
			}
			if i > 0 && !keyLess(v.Map[i-1].Key, a.Key) {
				t.Fatalf("map keys out of order or repeated: %q, %q", v.Map[i-1].Key, a.Key)
			}
			checkWithin(t, a.Value, lim, depth-1)
		}
	}
}

func FuzzParseValueJSONLimits(f *testing.F) {
	f.Add([]byte(`{"public":{"theme":"dark","sizes":[38,39],"at":{"$time":"2026-01-01T00:00:00Z"},"gone":null}}`))
	f.Add([]byte(`{"custom":{"b":1,"a":{"$decimal":"19.99"},"b":2}}`))
	f.Add(contextJSON(300))
	f.Add([]byte(`[1,-2.5e3,"\u00e9\ud83d\ude00",true,false,null,{"$time":"2026-01-01T00:00:00.5+02:00"},[[[]]]]`))
	lim := DefaultLimits
	base := fuzzBase(ID{7})
	fuzzLimited(f, &lim, func(b []byte) (Value, error) { return ParseValueJSONLimits(b, &lim) }, ParseValueJSON, ErrJSON,
		func(err error) bool { return strings.Contains(err.Error(), "nested deeper") },
		func(t *testing.T, v Value) {
			// The origin's path: a merge patch applied to a session.
			if ops, err := ContextOps(v, false, &lim); err == nil {
				_, _ = Apply(base, &Delta{ID: base.ID, BaseVersion: base.Version, Version: base.Version + 1, Ops: ops}, &lim)
			}
		})
}

// fuzzLimited fuzzes a decoder with limits (limited) against the same
// decoder without (free): an input refused with limits is refused with
// kind, and for a limit unless free refuses it too; one accepted decodes to
// what free decodes, within lim; then more runs on the value.
func fuzzLimited(f *testing.F, lim *Limits, limited, free func([]byte) (Value, error), kind error, tooDeep func(error) bool, more func(t *testing.T, v Value)) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > fuzzSizeCap {
			return
		}
		fuzzbudget.Check(t, len(b), func() {
			v, err := limited(b)
			fv, freeErr := free(b)
			if err != nil {
				checkDecodeError(t, err, kind)
				if freeErr == nil && !errors.Is(err, ErrTooLarge) && !tooDeep(err) {
					t.Fatalf("refused with limits (%v) for another reason than a limit", err)
				}
				return
			}
			if freeErr != nil || !fv.Equal(v) {
				t.Fatalf("accepted with limits, not without: %v", freeErr)
			}
			checkWithin(t, v, lim, lim.MaxDepth+MaxEnvelopeDepth)
			more(t, v)
		})
	})
}

func FuzzDecodeValue(f *testing.F) {
	f.Add(AppendValue(nil, Map(Attr{"public", Map(Attr{"theme", Text("dark")}, Attr{"n", List(Int(1), Float(1.5), Decimal(1999, -2), Time(1_700_000_000_123))})})))
	f.Add(contextCBOR(300))
	for _, v := range []Value{Text("héllo"), Int(-1), Float(0.1), Bool(true), Time(-1500), Decimal(-5, 3),
		List(), List(Int(1), List(Text("x"))), Map(Attr{"b", Int(1)}, Attr{"aa", Map()})} {
		f.Add(AppendValue(nil, v))
	}
	lim := DefaultLimits
	fuzzLimited(f, &lim, func(b []byte) (Value, error) { return DecodeValueLimits(b, &lim) }, DecodeValue, ErrCBOR,
		func(err error) bool { return errors.Is(err, ErrCBORTooDeep) },
		func(t *testing.T, v Value) {
			back, err := DecodeValueLimits(AppendValue(nil, v), &lim)
			if err != nil || !back.Equal(v) {
				t.Fatalf("re-decoding failed: %v", err)
			}
		})
}

func FuzzDecodeDelta(f *testing.F) {
	id := ID{7}
	f.Add(AppendDelta(nil, &Delta{ID: id, BaseVersion: 1, Version: 2, At: 5, Ops: []Op{
		{Code: OpSetAttr, NS: NamespacePublic, Key: "l", Value: List(Int(1), Map(Attr{"a", Bool(true)}))},
		{Code: OpDeleteAttr, Key: "x"}, {Code: OpSetField, Field: FieldCurrency, Value: Text("EUR")},
		{Code: OpLogin, CustomerID: "c", Generation: 2, Idle: 9, Hard: 10}, {Code: OpTouch, Idle: 11},
	}}))
	lim := DefaultLimits
	base := fuzzBase(id)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > fuzzSizeCap {
			return
		}
		fuzzbudget.Check(t, len(b), func() {
			var dl Delta
			if err := DecodeDeltaLimits(b, &dl, &lim); err != nil {
				checkDecodeError(t, err, ErrCBOR)
				return
			}
			if len(dl.Ops) > lim.MaxOps() {
				t.Fatalf("accepted %d ops", len(dl.Ops))
			}
			var again Delta
			if err := DecodeDeltaLimits(AppendDelta(nil, &dl), &again, &lim); err != nil {
				t.Fatalf("re-decoding failed: %v", err)
			}
			dl.ID, dl.BaseVersion, dl.Version = base.ID, base.Version, base.Version+1
			_, _ = Apply(base, &dl, &lim)
		})
	})
}

func FuzzDecodeTouches(f *testing.F) {
	f.Add(AppendTouches(nil, []Touch{{ID: ID{1}, Kind: KindAnonymous, Generation: 1, LastSeen: 10, IdleDeadline: 20, HardDeadline: 30}}))
	lim := DefaultLimits
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > fuzzSizeCap {
			return
		}
		fuzzbudget.Check(t, len(b), func() {
			ts, err := DecodeTouchesLimits(b, nil, &lim)
			if err != nil {
				checkDecodeError(t, err, ErrCBOR)
				return
			}
			again, err := DecodeTouchesLimits(AppendTouches(nil, ts), nil, &lim)
			if err != nil || len(again) != len(ts) {
				t.Fatalf("re-decoding failed: %v", err)
			}
		})
	})
}

// fuzzBase is a session to apply fuzzed changes to.
func fuzzBase(id ID) *Session {
	s, err := Apply(nil, &Delta{ID: id, Version: 1, At: 1000, Ops: []Op{
		{Code: OpStart, Kind: KindAnonymous, Generation: 1, Idle: 5000, Hard: 9000},
		{Code: OpSetAttr, NS: NamespaceCustom, Key: "cart", Value: Text("c-1")},
	}}, &DefaultLimits)
	if err != nil {
		panic(err)
	}
	return s
}
