package wire_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/sessionedge/sessionedge/internal/fuzzbudget"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// These tests hold our reflection-free codec to an independent one,
// fxamacker/cbor, configured for RFC 8949 core deterministic encoding.

func fxModes(t testing.TB) (cbor.EncMode, cbor.DecMode) {
	t.Helper()
	eo := cbor.CoreDetEncOptions()
	eo.Time = cbor.TimeUnixDynamic
	eo.TimeTag = cbor.EncTagRequired
	em, err := eo.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	dm, err := cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		IndefLength: cbor.IndefLengthForbidden,
		IntDec:      cbor.IntDecConvertSigned,
	}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	return em, dm
}

func interopSession() *wire.Session {
	id := wire.ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	s, err := wire.Apply(nil, &wire.Delta{ID: id, Version: 1, At: 1_700_000_000_000, Ops: []wire.Op{
		{Code: wire.OpStart, Kind: wire.KindCustomer, Generation: 2, Idle: 1_700_001_800_000, Hard: 1_700_021_600_000},
		{Code: wire.OpSetField, Field: wire.FieldSiteCode, Value: wire.Text("DE")},
		{Code: wire.OpSetField, Field: wire.FieldTrackingAllowed, Value: wire.Bool(false)},
		{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "loyalty", Value: wire.Map(
			wire.Attr{Key: "tier", Value: wire.Text("gold")},
			wire.Attr{Key: "points", Value: wire.Int(-12)},
			wire.Attr{Key: "since", Value: wire.Time(1_600_000_000_000)},
			wire.Attr{Key: "rate", Value: wire.Float(0.25)},
			wire.Attr{Key: "credit", Value: wire.Decimal(-1050, -2)},
		)},
		{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "recent", Value: wire.List(wire.Text("a"), wire.Float(1e10), wire.Bool(true))},
		{Code: wire.OpLifetime, Idle: 300_000, Hard: 86_400_000},
		{Code: wire.OpDevice, Device: wire.Device{UserAgent: "Mozilla/5.0", Addr: "2001:db8::/48", Site: "DE"}},
	}}, &wire.DefaultLimits)
	if err != nil {
		panic(err)
	}
	return s
}

// TestFxamackerDecodesAndReencodes decodes our encodings with fxamacker and
// encodes them back: a deterministic encoder must reproduce our bytes.
func TestFxamackerDecodesAndReencodes(t *testing.T) {
	em, dm := fxModes(t)
	s := interopSession()
	dl := wire.Delta{ID: s.ID, BaseVersion: 3, Version: 4, At: 1_700_000_000_500, Ops: []wire.Op{
		{Code: wire.OpSetAttr, NS: wire.NamespacePrivacy, Key: "email", Value: wire.Text("x@example.com")},
		{Code: wire.OpDeleteAttr, NS: wire.NamespaceCustom, Key: "old"},
		{Code: wire.OpLogout, Generation: 3, Idle: 10, Hard: 20},
		{Code: wire.OpEnd, Reason: wire.EndIdleExpired},
	}}
	cases := map[string][]byte{
		"session": wire.AppendSession(nil, s),
		"delta":   wire.AppendDelta(nil, &dl),
		"batch":   wire.AppendBatch(nil, &wire.Batch{Cursor: "c-9", Deltas: []wire.Delta{dl, dl}, Reset: true}),
		"touches": wire.AppendTouches(nil, []wire.Touch{{ID: s.ID, Kind: wire.KindAnonymous, Generation: 1, LastSeen: 5, IdleDeadline: -1, HardDeadline: 7},
			{ID: s.ID, Kind: wire.KindAnonymous, Generation: 1, Device: wire.Device{UserAgent: "ua"},
				Init: []wire.Op{{Code: wire.OpSetField, Field: wire.FieldLocale, Value: wire.Text("de-DE")}}}}),
	}
	for name, ours := range cases {
		t.Run(name, func(t *testing.T) {
			var v any
			if err := dm.Unmarshal(ours, &v); err != nil {
				t.Fatalf("fxamacker cannot decode our %s: %v", name, err)
			}
			back, err := em.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, ours) {
				t.Fatalf("fxamacker re-encodes\n ours %x\n as   %x", ours, back)
			}
		})
	}
}

// deltaFrom builds a delta from fuzz input, covering every op and value type.
type byteReader struct{ b []byte }

func (r *byteReader) u8() uint8 {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) u64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = r.u8()
	}
	return binary.BigEndian.Uint64(buf[:])
}

func (r *byteReader) text() string {
	n := int(r.u8() % 12)
	alphabet := []rune("abcXYZ09_.-é")
	out := make([]rune, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, alphabet[int(r.u8())%len(alphabet)])
	}
	return string(out)
}

func (r *byteReader) value(depth int) wire.Value {
	switch k := r.u8() % 8; {
	case k == 0:
		return wire.Text(r.text())
	case k == 1:
		return wire.Int(int64(r.u64()))
	case k == 2:
		f := math.Float64frombits(r.u64())
		if math.IsNaN(f) {
			f = 0.5
		}
		return wire.Float(f)
	case k == 3:
		return wire.Bool(r.u8()&1 == 1)
	case k == 4:
		// Whole seconds: fxamacker's time.Time path rounds fractional ones differently.
		return wire.Time(int64(int32(r.u64())) * 1000)
	case k == 5:
		return wire.Decimal(int64(r.u64()), int32(r.u8()%64)-32)
	case k == 6 && depth < 3:
		n := int(r.u8() % 4)
		vs := make([]wire.Value, n)
		for i := range vs {
			vs[i] = r.value(depth + 1)
		}
		return wire.List(vs...)
	case k == 7 && depth < 3:
		var as []wire.Attr
		for i := int(r.u8() % 4); i > 0; i-- {
			as = append(as, wire.Attr{Key: r.text() + "k", Value: r.value(depth + 1)})
		}
		return wire.Map(as...)
	}
	return wire.Int(int64(r.u8()))
}

func (r *byteReader) delta() wire.Delta {
	var dl wire.Delta
	copy(dl.ID[:], []byte{r.u8(), r.u8(), r.u8(), r.u8()})
	dl.BaseVersion = r.u64() >> (r.u8() % 64)
	dl.Version = dl.BaseVersion + 1
	dl.At = int64(r.u64()) >> (r.u8() % 64)
	for n := int(r.u8()%5) + 1; n > 0; n-- {
		op := wire.Op{Code: wire.OpCode(r.u8()%11 + 1)}
		switch op.Code {
		case wire.OpStart:
			op.Kind, op.Generation, op.Idle, op.Hard = wire.Kind(r.u8()%3+1), uint32(r.u64()), int64(r.u64()), int64(r.u64())
		case wire.OpSetField:
			op.Field, op.Value = wire.Field(r.u8()%wire.NumFields), r.value(0)
		case wire.OpSetAttr:
			op.NS, op.Key, op.Value = wire.Namespace(r.u8()%3), r.text(), r.value(0)
		case wire.OpDeleteAttr:
			op.NS, op.Key = wire.Namespace(r.u8()%3), r.text()
		case wire.OpClearNamespace:
			op.NS = wire.Namespace(r.u8() % 3)
		case wire.OpLogin:
			op.CustomerID, op.Generation, op.Idle, op.Hard = r.text(), uint32(r.u64()), int64(r.u64()), int64(r.u64())
		case wire.OpLogout:
			op.Generation, op.Idle, op.Hard = uint32(r.u64()), int64(r.u64()), int64(r.u64())
		case wire.OpTouch:
			op.Idle = int64(r.u64())
		case wire.OpEnd:
			op.Reason = wire.EndReason(r.u8()%5 + 1)
		case wire.OpLifetime:
			op.Idle, op.Hard = int64(r.u64()), int64(r.u64())
		case wire.OpDevice:
			op.Device = wire.Device{UserAgent: r.text(), Addr: r.text(), Site: r.text()}
		}
		dl.Ops = append(dl.Ops, op)
	}
	return dl
}

// toAny builds the same delta as a generic tree, independently of our encoder.
func toAny(dl *wire.Delta) any {
	m := map[uint64]any{1: dl.ID[:], 3: dl.Version}
	if dl.BaseVersion != 0 {
		m[2] = dl.BaseVersion
	}
	if dl.At != 0 {
		m[4] = dl.At
	}
	ops := []any{}
	for _, op := range dl.Ops {
		a := []any{uint64(op.Code)}
		switch op.Code {
		case wire.OpStart:
			a = append(a, uint64(op.Kind), uint64(op.Generation), op.Idle, op.Hard)
		case wire.OpSetField:
			a = append(a, uint64(op.Field), valueAny(op.Value))
		case wire.OpSetAttr:
			a = append(a, uint64(op.NS), op.Key, valueAny(op.Value))
		case wire.OpDeleteAttr:
			a = append(a, uint64(op.NS), op.Key)
		case wire.OpClearNamespace:
			a = append(a, uint64(op.NS))
		case wire.OpLogin:
			a = append(a, op.CustomerID, uint64(op.Generation), op.Idle, op.Hard)
		case wire.OpLogout:
			a = append(a, uint64(op.Generation), op.Idle, op.Hard)
		case wire.OpTouch:
			a = append(a, op.Idle)
		case wire.OpEnd:
			a = append(a, uint64(op.Reason))
		case wire.OpLifetime:
			a = append(a, op.Idle, op.Hard)
		case wire.OpDevice:
			a = append(a, op.Device.UserAgent, op.Device.Addr, op.Device.Site)
		}
		ops = append(ops, a)
	}
	m[5] = ops
	return m
}

func valueAny(v wire.Value) any {
	switch v.Type {
	case wire.TypeText:
		return v.Text
	case wire.TypeInt:
		return v.Int
	case wire.TypeFloat:
		return v.Float
	case wire.TypeBool:
		return v.Int != 0
	case wire.TypeTime:
		return cbor.Tag{Number: 1, Content: v.Int / 1000}
	case wire.TypeDecimal:
		return cbor.Tag{Number: 4, Content: []any{int64(v.Exp), v.Int}}
	case wire.TypeList:
		out := []any{}
		for _, e := range v.List {
			out = append(out, valueAny(e))
		}
		return out
	case wire.TypeMap:
		out := map[string]any{}
		for _, a := range v.Map {
			out[a.Key] = valueAny(a.Value)
		}
		return out
	}
	return nil
}

// FuzzDeltaDifferential encodes random deltas with both codecs and decodes
// each one's bytes with ours: the bytes and the deltas must agree.
func FuzzDeltaDifferential(f *testing.F) {
	f.Add([]byte("seed: set one attribute"))
	f.Add(bytes.Repeat([]byte{0xff, 0x00, 0x37}, 40))
	em, _ := fxModes(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := &byteReader{b: in}
		dl := r.delta()
		ours := wire.AppendDelta(nil, &dl)
		theirs, err := em.Marshal(toAny(&dl))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("codecs disagree on %+v\n ours   %x\n theirs %x", dl, ours, theirs)
		}
		var back wire.Delta
		var err2 error
		fuzzbudget.Check(t, len(theirs), func() { err2 = wire.DecodeDeltaLimits(theirs, &back, nil) })
		if err2 != nil {
			t.Fatalf("cannot decode fxamacker's bytes: %v", err2)
		}
		if again := wire.AppendDelta(nil, &back); !bytes.Equal(again, ours) {
			t.Fatalf("decoded delta re-encodes differently")
		}
	})
}
