//go:build !wasip1

package filter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// The fuzz targets drive the exported callbacks (through the VM methods that
// main's exports call) with hostile input: cookie and token headers, raw
// header maps, and CBOR answers from the origin. Any panic is a VM trap in
// production, so the only property checked is that the filter keeps working.

func fuzzEnv(t testing.TB, extra ...string) *proxytest.Env {
	o := proxytest.NewOrigin(proxytest.Start)
	o.APIKey = "edge-key"
	e := proxytest.NewEnv(t, newNative, o)
	e.MustConfigure(proxytest.Config(`,"sync":{"interval":"100ms"},"cache":{"entries":64,"tokens":64},` +
		`"capture":{"query":["q","utm_source"],"cookies":["c","q"],"tracking":["utm_source"],"segment":["q","c"],"maxValueLen":8,"maxCount":2},` +
		`"consent":{"cookie":"dnt"}` + strings.Join(extra, "")))
	return e
}

// sane checks that the VM still mints and forwards after the fuzz input.
func sane(t *testing.T, e *proxytest.Env) {
	s := e.Request("GET", "/", nil)
	if !s.Forwarded() || s.Header("x-session-id") == "" {
		t.Fatalf("VM broken after fuzz input: %v", s.Headers())
	}
	s.Finish()
}

func FuzzCookie(f *testing.F) {
	now := proxytest.Start.Unix()
	id := wire.ID{1, 2, 3}
	good := proxytest.Token(wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now, IdleDeadline: now + 60, HardDeadline: now + 3600})
	f.Add("__Host-sid="+good, "")
	f.Add("a=b; __Host-sid=\""+good+"\"; __Host-sid=x", "x-session-id")
	f.Add("__Host-sid="+good[:len(good)-1]+"A", "X-SESSION-CONTEXT")
	f.Add(";;;=;__Host-sid==", "cookie")
	f.Add("__Host-sid="+string(make([]byte, wire.TokenLen)), "sessionedge-token")
	f.Add("c=1; q=2; dnt; __Host-sid="+good+"; c=3", "cookie")
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, cookie, name string) {
		e.T = t
		e.Reset()
		s := e.Request("GET", "/.session/context", nil, "cookie", cookie, name, cookie, "sessionedge-token", cookie)
		for _, c := range e.Pending() {
			e.Answer(c, 404, nil)
		}
		s.Respond("x-session-token", cookie)
		s.Finish()
		sane(t, e)
	})
}

func FuzzHeaderMap(f *testing.F) {
	f.Add(abi.AppendPairs(nil, ":path", "/", "cookie", "__Host-sid=x", "x-session-id", "1"))
	f.Add([]byte{1, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 'b', 0})
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 'b', 0, 'c'})
	// Odd-length inputs run with pairs header writes, even-length ones with
	// single writes, so both rewrite paths see hostile maps.
	single, pairs := fuzzEnv(f, `,"headerWrites":"single"`), fuzzEnv(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		e := single
		if len(raw)%2 == 1 {
			e = pairs
		}
		e.T = t
		e.Reset()
		e.M.RawRequestPairs = raw
		if raw == nil {
			e.M.RawRequestPairs = []byte{}
		}
		s := e.Request("GET", "/", nil)
		e.M.RawRequestPairs = nil
		for _, c := range e.Pending() {
			e.Answer(c, 0, nil)
		}
		s.Finish()
		sane(t, e)
	})
}

func FuzzOriginCBOR(f *testing.F) {
	id := wire.ID{9}
	sess := &wire.Session{ID: id, Kind: wire.KindCustomer, Generation: 2, Version: 3,
		Fields: [wire.NumFields]wire.Value{wire.Text("DE"), wire.Text("EUR")}}
	sess.Attrs[wire.NamespacePublic] = wire.Attrs{{Key: "k", Value: wire.List(wire.Int(1), wire.Map(wire.Attr{Key: "x", Value: wire.Decimal(1999, -2)}))}}
	f.Add(uint8(0), wire.AppendSession(nil, sess))
	bt := &wire.Batch{Cursor: "7", Deltas: []wire.Delta{{ID: id, BaseVersion: 3, Version: 4, At: 1,
		Ops: []wire.Op{{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "a", Value: wire.Text("b")}, {Code: wire.OpEnd, Reason: wire.EndRevoked}}}}}
	f.Add(uint8(1), wire.AppendBatch(nil, bt))
	f.Add(uint8(1), wire.AppendBatch(nil, &wire.Batch{Cursor: "", Reset: true}))
	f.Add(uint8(2), wire.AppendSession(nil, sess))
	f.Add(uint8(0), []byte{0xbf, 0xff})
	e := fuzzEnv(f)
	now := proxytest.Start.Unix()
	cookie := "__Host-sid=" + proxytest.Token(wire.Claims{Kind: wire.KindCustomer, ID: id, Generation: 2, IssuedAt: now, IdleDeadline: now + 1e6, HardDeadline: now + 2e6})
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e.T = t
		e.Reset()
		var s *proxytest.Stream
		switch which % 3 {
		case 0: // a session fetch
			s = e.Request("GET", "/", nil, "cookie", cookie)
		case 1: // a sync batch: the first tick joins, later ones poll
			e.Advance(100 * time.Millisecond)
			e.Tick()
		case 2: // the answer to a self-service write
			s = e.Request("PATCH", "/.session/context", []byte(`{"public":{"a":1}}`), "cookie", cookie)
		}
		for _, c := range e.Pending() {
			e.Answer(c, 200, body, "content-type", "application/cbor")
		}
		if s != nil {
			s.Finish()
		}
		sane(t, e)
		// Keep the session uncached so the next input is fetched again.
		e.Advance(time.Millisecond)
	})
}

func FuzzPatchBody(f *testing.F) {
	f.Add([]byte(`{"public":{"a":1,"b":{"$decimal":"1.5"},"c":[1,2,{"d":null}]}}`))
	f.Add([]byte(`{"public":null}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[`))
	e := fuzzEnv(f)
	now := proxytest.Start.Unix()
	cookie := "__Host-sid=" + proxytest.Token(wire.Claims{Kind: wire.KindAnonymous, ID: wire.ID{5}, Generation: 1, IssuedAt: now, IdleDeadline: now + 1e6, HardDeadline: now + 2e6})
	f.Fuzz(func(t *testing.T, body []byte) {
		e.T = t
		e.Reset()
		if body == nil {
			body = []byte{}
		}
		s := e.Request("PATCH", "/.session/context", body, "cookie", cookie)
		e.Serve()
		if s.Local() == nil {
			t.Fatal("self-service PATCH not answered")
		}
		s.Finish()
	})
}

// FuzzForwardedValues proves that no byte outside visible ASCII leaves in a
// forwarded x-session-* header, whatever an app or a shopper stored in the
// session (control bytes, NUL, CR LF, UTF-8, '%').
func FuzzForwardedValues(f *testing.F) {
	f.Add("c-1", "cart-1", "de-DE", "EUR")
	f.Add("müller\r\n", "a\x00b", "x y", "%%")
	f.Add("\x7f\x80\xff", "\t", "", "€")
	e := fuzzEnv(f)
	now := proxytest.Start.Unix()
	f.Fuzz(func(t *testing.T, customer, cart, locale, currency string) {
		e.T = t
		e.Reset()
		id, err := wire.NewID()
		if err != nil {
			t.Skip(err)
		}
		ops := []wire.Op{}
		for _, fv := range []struct {
			f wire.Field
			v string
		}{{wire.FieldCartID, cart}, {wire.FieldLocale, locale}, {wire.FieldCurrency, currency}} {
			if fv.v != "" {
				ops = append(ops, wire.Op{Code: wire.OpSetField, Field: fv.f, Value: wire.Text(fv.v)})
			}
		}
		kind, gen := wire.KindAnonymous, uint32(1)
		if customer != "" {
			ops = append(ops, wire.Op{Code: wire.OpLogin, CustomerID: customer, Generation: 2})
			kind, gen = wire.KindCustomer, 2
		}
		if _, err := e.Origin.Write(id, ops...); err != nil {
			return // the origin refuses it: it can never reach an edge
		}
		tok := proxytest.Token(wire.Claims{Kind: kind, ID: id, Generation: gen, IssuedAt: now, IdleDeadline: now + 1e6, HardDeadline: now + 2e6})
		s := e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
		e.Serve()
		if s.Header("x-session-id") != id.String() {
			t.Fatalf("session not forwarded: %v", s.Headers())
		}
		proxytest.CheckForwarded(t, s)
		s.Finish()
	})
}
