package wire

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/fuzzbudget"
)

func start(id ID) *Session {
	s, err := Apply(nil, &Delta{ID: id, Version: 1, At: 1000, Ops: []Op{
		{Code: OpStart, Kind: KindAnonymous, Generation: 1, Idle: 5000, Hard: 9000},
	}}, &DefaultLimits)
	if err != nil {
		panic(err)
	}
	return s
}

func TestApplyOps(t *testing.T) {
	id := ID{42}
	base := start(id)
	base, _ = Apply(base, &Delta{ID: id, BaseVersion: 1, Version: 2, At: 1100, Ops: []Op{
		{Code: OpSetField, Field: FieldCartID, Value: Text("cart-1")},
		{Code: OpSetAttr, NS: NamespacePrivacy, Key: "email", Value: Text("a@b.c")},
		{Code: OpSetAttr, NS: NamespaceCustom, Key: "color", Value: Text("red")},
	}}, &DefaultLimits)

	tests := []struct {
		name  string
		ops   []Op
		check func(t *testing.T, s *Session)
	}{
		{"set attribute", []Op{{Code: OpSetAttr, NS: NamespacePublic, Key: "theme", Value: Text("dark")}}, func(t *testing.T, s *Session) {
			if v, _ := s.Attr(NamespacePublic, "theme"); v.Text != "dark" {
				t.Fatalf("theme = %+v", v)
			}
		}},
		{"delete attribute", []Op{{Code: OpDeleteAttr, NS: NamespaceCustom, Key: "color"}}, func(t *testing.T, s *Session) {
			if _, ok := s.Attr(NamespaceCustom, "color"); ok {
				t.Fatal("color still there")
			}
		}},
		{"delete absent attribute", []Op{{Code: OpDeleteAttr, NS: NamespaceCustom, Key: "nope"}}, func(t *testing.T, s *Session) {
			if len(s.Attrs[NamespaceCustom]) != 1 {
				t.Fatal("custom changed")
			}
		}},
		{"clear namespace", []Op{{Code: OpClearNamespace, NS: NamespacePrivacy}}, func(t *testing.T, s *Session) {
			if len(s.Attrs[NamespacePrivacy]) != 0 {
				t.Fatal("privacy not cleared")
			}
		}},
		{"unset field", []Op{{Code: OpSetField, Field: FieldCartID}}, func(t *testing.T, s *Session) {
			if !s.Field(FieldCartID).IsZero() {
				t.Fatal("cart still set")
			}
		}},
		{"login", []Op{{Code: OpLogin, CustomerID: "c-7", Generation: 2, Idle: 7000, Hard: 8000}}, func(t *testing.T, s *Session) {
			if s.Kind != KindCustomer || s.CustomerID() != "c-7" || s.Generation != 2 || s.IdleDeadline != 7000 || s.HardDeadline != 8000 {
				t.Fatalf("after login: %+v", s)
			}
			if s.Field(FieldCartID).Text != "cart-1" || len(s.Attrs[NamespacePrivacy]) != 1 {
				t.Fatal("login lost context")
			}
		}},
		{"logout", []Op{{Code: OpLogout, Generation: 2, Idle: 7000, Hard: 8000}}, func(t *testing.T, s *Session) {
			if s.Kind != KindAnonymous || s.CustomerID() != "" || len(s.Attrs[NamespacePrivacy]) != 0 {
				t.Fatalf("after logout: %+v", s)
			}
			if s.Field(FieldCartID).Text != "cart-1" || len(s.Attrs[NamespaceCustom]) != 1 {
				t.Fatal("logout lost cart or custom")
			}
		}},
		{"no ops: a version bump", nil, func(t *testing.T, s *Session) {
			if s.LastSeen != base.LastSeen || s.NumAttrs() != base.NumAttrs() || s.IdleDeadline != base.IdleDeadline {
				t.Fatalf("a delta without ops changed more than the version: %+v", s)
			}
		}},
		{"login cannot extend the hard deadline", []Op{{Code: OpLogin, CustomerID: "c-7", Generation: 2, Idle: 20000, Hard: 30000}}, func(t *testing.T, s *Session) {
			if s.HardDeadline != 9000 || s.IdleDeadline != 9000 {
				t.Fatalf("after login: idle %d hard %d, want both 9000", s.IdleDeadline, s.HardDeadline)
			}
		}},
		{"logout without a hard deadline keeps it", []Op{{Code: OpLogout, Generation: 2, Idle: 7000}}, func(t *testing.T, s *Session) {
			if s.HardDeadline != 9000 || s.IdleDeadline != 7000 {
				t.Fatalf("after logout: idle %d hard %d", s.IdleDeadline, s.HardDeadline)
			}
		}},
		{"touch is capped at the hard deadline", []Op{{Code: OpTouch, Idle: 12000}}, func(t *testing.T, s *Session) {
			if s.IdleDeadline != 9000 {
				t.Fatalf("idle deadline %d beyond the hard deadline", s.IdleDeadline)
			}
		}},
		{"touch", []Op{{Code: OpTouch, Idle: 6000}}, func(t *testing.T, s *Session) {
			if s.LastSeen != 1200 || s.IdleDeadline != 6000 {
				t.Fatalf("after touch: lastSeen %d idle %d", s.LastSeen, s.IdleDeadline)
			}
		}},
		{"end", []Op{{Code: OpEnd, Reason: EndAbandoned}}, func(t *testing.T, s *Session) {
			if s.Ended != EndAbandoned || s.NumAttrs() != 0 || !s.Field(FieldCartID).IsZero() {
				t.Fatalf("after end: %+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := AppendSession(nil, base)
			next, err := Apply(base, &Delta{ID: id, BaseVersion: 2, Version: 3, At: 1200, Ops: tt.ops}, &DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if next.Version != 3 {
				t.Fatalf("version = %d", next.Version)
			}
			tt.check(t, next)
			if string(AppendSession(nil, base)) != string(before) {
				t.Fatal("Apply modified its input")
			}
		})
	}
}

func TestApplyRejects(t *testing.T) {
	id := ID{7}
	s := start(id)
	ended, _ := Apply(s, &Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpEnd, Reason: EndRevoked}}}, &DefaultLimits)
	small := Limits{MaxAttrs: 1, MaxTextLen: 3}.WithDefaults()
	tests := []struct {
		name  string
		s     *Session
		d     Delta
		lim   *Limits
		want  error
		field string
	}{
		{"version mismatch", s, Delta{ID: id, BaseVersion: 5, Version: 6, Ops: []Op{{Code: OpTouch}}}, &DefaultLimits, ErrVersionMismatch, ""},
		{"version does not follow", s, Delta{ID: id, BaseVersion: 1, Version: 3, Ops: []Op{{Code: OpTouch}}}, &DefaultLimits, ErrBadDelta, ""},
		{"unknown session", nil, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpTouch}}}, &DefaultLimits, ErrVersionMismatch, ""},
		{"new without start", nil, Delta{ID: id, Version: 1, Ops: []Op{{Code: OpTouch}}}, &DefaultLimits, ErrBadDelta, ""},
		{"start twice", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpStart, Kind: KindAnonymous}}}, &DefaultLimits, ErrBadDelta, ""},
		{"new without ops", nil, Delta{ID: id, Version: 1}, &DefaultLimits, ErrBadDelta, ""},
		{"other session", s, Delta{ID: ID{8}, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpTouch}}}, &DefaultLimits, ErrBadDelta, ""},
		{"ended", ended, Delta{ID: id, BaseVersion: 2, Version: 3, Ops: []Op{{Code: OpTouch}}}, &DefaultLimits, ErrEnded, ""},
		{"field type", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetField, Field: FieldCurrency, Value: Int(3)}}}, &DefaultLimits, ErrInvalid, "currency"},
		{"customerId by setField", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetField, Field: FieldCustomerID, Value: Text("x")}}}, &DefaultLimits, ErrInvalid, "customerId"},
		{"bad key", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetAttr, Key: "a b", Value: Int(1)}}}, &DefaultLimits, ErrInvalid, "custom.a b"},
		{"long key", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetAttr, Key: strings.Repeat("k", 65), Value: Int(1)}}}, &DefaultLimits, ErrTooLarge, "custom." + strings.Repeat("k", 65)},
		{"long text", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetAttr, NS: NamespacePublic, Key: "t", Value: Text("abcd")}}}, &small, ErrTooLarge, "public.t"},
		{"too many attributes", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetAttr, Key: "a", Value: Int(1)}, {Code: OpSetAttr, Key: "b", Value: Int(1)}}}, &small, ErrTooLarge, "session"},
		{"too deep", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetAttr, Key: "d", Value: List(List(List(List(List(Int(1))))))}}}, &DefaultLimits, ErrInvalid, "custom.d[0][0][0][0]"},
		{"nested bad key", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetAttr, Key: "m", Value: Map(Attr{"no way", Int(1)})}}}, &DefaultLimits, ErrInvalid, "custom.m.no way"},
		{"float not finite", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpSetAttr, Key: "f", Value: Float(posInf())}}}, &DefaultLimits, ErrInvalid, "custom.f"},
		{"login without raising generation", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []Op{{Code: OpLogin, CustomerID: "c", Generation: 1}}}, &DefaultLimits, ErrInvalid, "generation"},
		{"session too large", s, Delta{ID: id, BaseVersion: 1, Version: 2, Ops: bigOps(6)}, &DefaultLimits, ErrTooLarge, "session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply(tt.s, &tt.d, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply = %v, want %v", err, tt.want)
			}
			var fe *FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Fatalf("error %v does not name field %q", err, tt.field)
			}
		})
	}
}

func posInf() float64 { f := 1e308; return f * 10 }

// bigOps sets n attributes of 2000 characters: more than 10 KiB for n ≥ 6.
func bigOps(n int) []Op {
	var ops []Op
	for i := 0; i < n; i++ {
		ops = append(ops, Op{Code: OpSetAttr, Key: "k" + itoa(i), Value: Text(strings.Repeat("x", 2000))})
	}
	return ops
}

func TestContextOps(t *testing.T) {
	id := ID{3}
	s := start(id)
	patch, err := ParseValueJSON([]byte(`{"currency":"CHF","cartId":null,"public":{"theme":"dark","gone":null},"privacy":null}`))
	if err != nil {
		t.Fatal(err)
	}
	ops, err := ContextOps(patch, false, &DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	next, err := Apply(s, &Delta{ID: id, BaseVersion: 1, Version: 2, Ops: ops}, &DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	got := string(AppendContextJSON(nil, next, AllNamespaces))
	want := `{"currency":"CHF","custom":{},"privacy":{},"public":{"theme":"dark"}}`
	if got != want {
		t.Fatalf("context = %s\nwant      %s", got, want)
	}
	for _, tt := range []struct{ body, field string }{
		{`{"customerId":"x"}`, "customerId"},
		{`{"basket":{}}`, "basket"},
		{`{"public":3}`, "public"},
		{`{"currency":3}`, "currency"},
		{`{"custom":{"bad key":1}}`, "custom.bad key"},
		{`[]`, "context"},
	} {
		v, err := ParseValueJSON([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ContextOps(v, false, &DefaultLimits)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("ContextOps(%s) = %v, want an error naming %q", tt.body, err, tt.field)
		}
	}
}

func TestParseValueJSONRejects(t *testing.T) {
	for _, in := range []string{``, `{`, `[1,]`, `{"a":1,}`, `"abc`, `01`, `1.`, `-`, `1e`, `tru`, `{"a":1}x`,
		`{"a":1,"a":2}`, `"\x"`, "\"a\x01\"", `99999999999999999999`, `{"$time":"yesterday"}`, `{"$decimal":"1.2.3"}`,
		strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		if _, err := ParseValueJSON([]byte(in)); !errors.Is(err, ErrJSON) {
			t.Errorf("ParseValueJSON(%q) = %v, want ErrJSON", in, err)
		}
	}
	v, err := ParseValueJSON([]byte(`{"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","n":-1.5e2,"l":[true,false,null]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := v.Map.Get("s"); s.Text != "a\"\\/\b\f\n\r\té😀" {
		t.Errorf("escapes decoded to %q", s.Text)
	}
	if n, _ := v.Map.Get("n"); n.Type != TypeFloat || n.Float != -150 {
		t.Errorf("n = %+v", n)
	}
}

func FuzzParseValueJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,"x",{"$decimal":"1.10"},{"$time":"2026-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Value
		var err error
		fuzzbudget.Check(t, len(b), func() { v, err = ParseValueJSON(b) })
		if err != nil {
			return
		}
		out := AppendValueJSON(nil, v)
		back, err := ParseValueJSON(out)
		if err != nil {
			t.Fatalf("our own JSON %s does not parse: %v", out, err)
		}
		if string(AppendValueJSON(nil, back)) != string(out) {
			t.Fatalf("JSON round trip unstable: %s", out)
		}
	})
}

// TestApplyOpOrder checks that ops touching the same attributes apply in
// delta order, whatever the merge does underneath.
func TestApplyOpOrder(t *testing.T) {
	id := ID{3}
	base := start(id)
	base, err := Apply(base, &Delta{ID: id, BaseVersion: 1, Version: 2, At: 1100, Ops: []Op{
		{Code: OpSetAttr, NS: NamespaceCustom, Key: "a", Value: Text("1")},
		{Code: OpSetAttr, NS: NamespaceCustom, Key: "bb", Value: Text("2")},
		{Code: OpSetAttr, NS: NamespacePrivacy, Key: "email", Value: Text("x@y")},
		{Code: OpLogin, CustomerID: "c", Generation: 2},
	}}, &DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	set := func(ns Namespace, k, v string) Op { return Op{Code: OpSetAttr, NS: ns, Key: k, Value: Text(v)} }
	del := func(ns Namespace, k string) Op { return Op{Code: OpDeleteAttr, NS: ns, Key: k} }
	clr := func(ns Namespace) Op { return Op{Code: OpClearNamespace, NS: ns} }
	tests := []struct {
		name    string
		ops     []Op
		custom  string // the custom namespace as k=v,... in key order
		privacy string
	}{
		{"set then delete", []Op{set(0, "c", "3"), del(0, "c")}, "a=1,bb=2", "email=x@y"},
		{"delete then set", []Op{del(0, "a"), set(0, "a", "9")}, "a=9,bb=2", "email=x@y"},
		{"set twice", []Op{set(0, "a", "8"), set(0, "a", "9")}, "a=9,bb=2", "email=x@y"},
		{"clear then set", []Op{clr(0), set(0, "z", "1")}, "z=1", "email=x@y"},
		{"set then clear", []Op{set(0, "z", "1"), clr(0)}, "", "email=x@y"},
		{"set privacy then logout", []Op{set(1, "phone", "1"), {Code: OpLogout, Generation: 3}}, "a=1,bb=2", ""},
		{"logout then set privacy", []Op{{Code: OpLogout, Generation: 3}, set(1, "phone", "1")}, "a=1,bb=2", "phone=1"},
		{"keys in CBOR order", []Op{set(0, "b", "x"), set(0, "aaa", "y")}, "a=1,b=x,bb=2,aaa=y", "email=x@y"},
		{"delete absent", []Op{del(0, "nope")}, "a=1,bb=2", "email=x@y"},
	}
	show := func(as Attrs) string {
		var b strings.Builder
		for i, a := range as {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(a.Key + "=" + a.Value.Text)
		}
		return b.String()
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, err := Apply(base, &Delta{ID: id, BaseVersion: 2, Version: 3, At: 1200, Ops: tt.ops}, &DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if got := show(next.Attrs[NamespaceCustom]); got != tt.custom {
				t.Errorf("custom = %q, want %q", got, tt.custom)
			}
			if got := show(next.Attrs[NamespacePrivacy]); got != tt.privacy {
				t.Errorf("privacy = %q, want %q", got, tt.privacy)
			}
			if show(base.Attrs[NamespaceCustom]) != "a=1,bb=2" {
				t.Fatal("Apply modified its input")
			}
		})
	}
}

// TestApplyLargeDeltaIsCheap applies a delta at the op limit that ends up
// over the attribute limit: it must be refused in linear-ish time, not
// after a copy of the namespace per op.
func TestApplyLargeDeltaIsCheap(t *testing.T) {
	id := ID{4}
	base := start(id)
	lim := DefaultLimits
	ops := make([]Op, lim.MaxOps())
	for i := range ops {
		ops[i] = Op{Code: OpSetAttr, NS: Namespace(i % NumNamespaces), Key: "k" + strconv.Itoa(i), Value: Int(int64(i))}
	}
	d := &Delta{ID: id, BaseVersion: 1, Version: 2, At: 1100, Ops: ops}
	fuzzbudget.CheckBudget(t, len(ops), 20*time.Millisecond, func() {
		if _, err := Apply(base, d, &lim); err == nil {
			t.Fatal("a delta over the attribute limit applied")
		}
	})
	raised := Limits{MaxAttrs: 4096, MaxSessionBytes: 1 << 20}.WithDefaults()
	fuzzbudget.CheckBudget(t, len(ops), 20*time.Millisecond, func() {
		next, err := Apply(base, d, &raised)
		if err != nil {
			t.Fatal(err)
		}
		if next.NumAttrs() != len(ops) {
			t.Fatalf("%d attributes, want %d", next.NumAttrs(), len(ops))
		}
	})
}

func TestApplyAllocsOneAttr(t *testing.T) {
	id := ID{5}
	base := start(id)
	d := &Delta{ID: id, BaseVersion: 1, Version: 2, At: 1100, Ops: []Op{{Code: OpSetAttr, NS: NamespaceCustom, Key: "k", Value: Int(1)}}}
	n := testing.AllocsPerRun(100, func() {
		if _, err := Apply(base, d, &DefaultLimits); err != nil {
			panic(err)
		}
	})
	if n > 4 { // as before attrChanges: the session, its namespace, and the limit check's
		t.Fatalf("%v allocations to apply a one-attribute delta", n)
	}
}
