//go:build !wasip1

package proxytest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// Scenarios of the generation rule, the soft logout through the origin and
// read-your-writes.

// claimsAt returns claims of session id at generation gen, issued now,
// with the given idle and hard lifetimes.
func claimsAt(kind wire.Kind, id wire.ID, gen uint32, now time.Time, idle, hard time.Duration) wire.Claims {
	n := now.Unix()
	return wire.Claims{Kind: kind, ID: id, Generation: gen, IssuedAt: n, IdleDeadline: n + int64(idle/time.Second), HardDeadline: n + int64(hard/time.Second)}
}

// cookieOf returns a cookie header for claims.
func cookieOf(c wire.Claims) string { return "__Host-sid=" + Token(c) }

// login logs session id in at the origin, raising the generation to gen.
func (f *fixture) login(id wire.ID, customer string, gen uint32) {
	f.t.Helper()
	if _, err := f.o.Write(id, wire.Op{Code: wire.OpLogin, CustomerID: customer, Generation: gen}); err != nil {
		f.t.Fatal(err)
	}
}

// selfService sends the three self-service requests with cookie and returns
// their local answers' statuses.
func selfService(e *Env, cookie string) (get, patch, del uint32) {
	status := func(s *Stream) uint32 {
		e.Serve()
		if l := s.Local(); l != nil {
			return l.Status
		}
		return 0
	}
	get = status(e.Request("GET", "/.session/context", nil, "cookie", cookie))
	patch = status(e.Request("PATCH", "/.session/context", []byte(`{"public":{"x":1}}`), "cookie", cookie))
	del = status(e.Request("DELETE", "/.session/context/public/theme", nil, "cookie", cookie))
	return
}

func testGeneration(t *testing.T, ng NewGuest) {
	t.Run("newer token fetches", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, old := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-1")})
		s := e.Request("GET", "/", nil, "cookie", old)
		e.Serve()
		if s.Header("x-session-generation") != "1" || s.Header("x-session-context-status") != "ok" {
			t.Fatalf("generation 1: %v", s.Headers())
		}
		// The app logged the shopper in elsewhere; this VM still caches
		// generation 1 when the generation-2 token arrives.
		f.login(id, "c-1", 2)
		newTok := Token(claimsAt(wire.KindCustomer, id, 2, e.Now(), 30*time.Minute, 6*time.Hour))
		s = e.Request("GET", "/", nil, "cookie", "__Host-sid="+newTok)
		p := e.Pending()
		if s.Action != uint32(abi.ActionPause) || len(p) != 1 || p[0].Header("x-session-token") != newTok {
			t.Fatalf("a token newer than the cached view did not fetch with the token: action %d, calls %+v", s.Action, p)
		}
		e.Serve()
		fs := ForwardedSession(t, s)
		if s.Header("x-session-kind") != "customer" || s.Header("x-session-customer") != "c-1" ||
			s.Header("x-session-generation") != "2" || fs.Generation != 2 || fs.Kind != wire.KindCustomer {
			t.Fatalf("after the fetch: %v", s.Headers())
		}
		// The old token is dead now: a new session, without asking anyone.
		n := len(f.o.Requests)
		s = e.Request("GET", "/", nil, "cookie", old)
		if s.Header("x-session-id") == id.String() || s.Header("x-session-context-status") != "new" || len(f.o.Requests) != n || len(e.Pending()) != 0 {
			t.Fatalf("old token after the login: id %s status %s", s.Header("x-session-id"), s.Header("x-session-context-status"))
		}
		get, patch, del := selfService(e, old)
		if get != 401 || patch != 401 || del != 401 || len(f.o.Requests) != n {
			t.Fatalf("old token on /.session/: GET %d PATCH %d DELETE %d, origin calls %v", get, patch, del, f.o.Requests[n:])
		}
	})
	t.Run("old token on a cold VM and after a restart", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, old := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "theme", Value: wire.Text("dark")})
		f.login(id, "c-1", 2)
		before := f.o.Sessions[id].Version
		for round := 0; round < 2; round++ {
			get, patch, del := selfService(e, old)
			if get != 401 || patch != 401 || del != 401 {
				t.Fatalf("round %d: old token on /.session/: GET %d PATCH %d DELETE %d", round, get, patch, del)
			}
			if v := f.o.Sessions[id].Version; v != before {
				t.Fatalf("round %d: the old token changed the session (version %d → %d)", round, before, v)
			}
			// A page request: a new session, and the token is remembered as
			// dead, so repeating it costs no origin call.
			s := e.Request("GET", "/", nil, "cookie", old)
			e.Serve()
			if s.Header("x-session-id") == id.String() || s.Header("x-session-context-status") != "new" {
				t.Fatalf("round %d: old token forwarded %v", round, s.Headers())
			}
			n := len(f.o.Requests)
			s = e.Request("GET", "/", nil, "cookie", old)
			if len(e.Pending()) != 0 || len(f.o.Requests) != n || s.Header("x-session-id") == id.String() {
				t.Fatalf("round %d: a token the origin refused was asked about again", round)
			}
			e.MustConfigure(Config(baseExtra)) // a restart: nothing cached
		}
	})
	t.Run("fetches are shared per generation", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, old := f.session(wire.KindAnonymous, 1)
		f.login(id, "c-1", 2)
		newCookie := cookieOf(claimsAt(wire.KindCustomer, id, 2, e.Now(), 30*time.Minute, 6*time.Hour))
		a := e.Request("GET", "/", nil, "cookie", old)
		b := e.Request("GET", "/", nil, "cookie", newCookie)
		c := e.Request("GET", "/", nil, "cookie", newCookie)
		if n := len(e.Pending()); n != 2 {
			t.Fatalf("%d fetches for two generations of one session, want 2", n)
		}
		e.Serve()
		if a.Header("x-session-id") == id.String() {
			t.Fatal("the old generation's request got the session")
		}
		for _, s := range []*Stream{b, c} {
			if s.Header("x-session-id") != id.String() || s.Header("x-session-generation") != "2" || ForwardedSession(t, s).Generation != 2 {
				t.Fatalf("generation 2: %v", s.Headers())
			}
		}
	})
	t.Run("unknown session with a token no edge mints", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, _ := wire.NewID()
		s := e.Request("GET", "/", nil, "cookie", cookieOf(claimsAt(wire.KindCustomer, id, 2, e.Now(), 30*time.Minute, time.Hour)))
		e.Serve()
		if s.Header("x-session-id") == id.String() {
			t.Fatal("a customer token of an unknown session was served")
		}
	})
}

func testSoftLogout(t *testing.T, ng NewGuest) {
	t.Run("through the origin", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, tok := f.idleCustomer()
		hard := f.o.Sessions[id].HardDeadline
		s := e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
		p := e.Pending()
		if s.Action != uint32(abi.ActionPause) || len(p) != 1 || p[0].Header(":path") != "/v1/sessions/"+id.String()+"/logout" ||
			p[0].Header(":method") != "POST" || p[0].Header("x-session-token") != tok {
			t.Fatalf("soft logout: action %d, calls %+v", s.Action, p)
		}
		e.Serve()
		if !s.Continued() || !s.Forwarded() || s.Header("x-session-id") != id.String() || s.Header("x-session-kind") != "anonymous" ||
			s.Header("x-session-generation") != "3" || s.Header("x-session-customer") != "" || s.Header("x-session-cart") != "cart-9" {
			t.Fatalf("after the soft logout: %v", s.Headers())
		}
		fs := ForwardedSession(t, s)
		if fs.Generation != 3 || len(fs.Attrs[wire.NamespacePrivacy]) != 0 || len(fs.Attrs[wire.NamespaceCustom]) != 1 {
			t.Fatalf("forwarded view %+v", fs)
		}
		c := Claims(t, CookieToken(SetCookies(s.Respond())[0]), e.Now())
		if c.Kind != wire.KindAnonymous || c.Generation != 3 || c.ID != id || c.HardDeadline*1000 != hard {
			t.Fatalf("soft logout token %+v, want anonymous generation 3 with the hard deadline %d", c, hard)
		}
		if o := f.o.Sessions[id]; o.Kind != wire.KindAnonymous || o.Generation != 3 || o.HardDeadline != hard {
			t.Fatalf("the origin's session %+v", o)
		}
		if !slices.Contains(f.o.Requests, "POST /v1/sessions/"+id.String()+"/logout") {
			t.Fatalf("the origin was not told of the soft logout: %v", f.o.Requests)
		}
	})
	t.Run("an old token cannot log out the current login", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, old := f.idleCustomer()
		// Logged out and in again since: generation 4, another customer.
		if _, err := f.o.Write(id, wire.Op{Code: wire.OpLogout, Generation: 3}); err != nil {
			t.Fatal(err)
		}
		f.login(id, "c-8", 4)
		if _, err := f.o.Write(id, wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePrivacy, Key: "email", Value: wire.Text("new@b.c")}); err != nil {
			t.Fatal(err)
		}
		check := func(when string) {
			o := f.o.Sessions[id]
			if o.Generation != 4 || o.Kind != wire.KindCustomer || o.Fields[wire.FieldCustomerID].Text != "c-8" || len(o.Attrs[wire.NamespacePrivacy]) != 1 {
				t.Fatalf("%s: the current login was touched: %+v", when, o)
			}
		}
		// Cold VM: the origin refuses the logout of another generation.
		s := e.Request("GET", "/", nil, "cookie", "__Host-sid="+old)
		e.Serve()
		check("cold VM")
		if s.Header("x-session-id") == id.String() || s.Header("x-session-context-status") != "new" {
			t.Fatalf("cold VM: the old token's request got %v", s.Headers())
		}
		// Warm VM: the cached view of generation 4 refuses it without a call.
		cur := cookieOf(claimsAt(wire.KindCustomer, id, 4, e.Now(), 30*time.Minute, time.Hour))
		e.Request("GET", "/", nil, "cookie", cur)
		e.Serve()
		n := len(f.o.Requests)
		s = e.Request("GET", "/", nil, "cookie", "__Host-sid="+old)
		if len(e.Pending()) != 0 || len(f.o.Requests) != n || s.Header("x-session-id") == id.String() {
			t.Fatal("warm VM: an old token reached the origin or got the session")
		}
		check("warm VM")
	})
	t.Run("origin unreachable", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, tok := f.idleCustomer()
		s := e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
		e.Answer(e.Pending()[0], 0, nil)
		if !s.Continued() || s.Header("x-session-id") == id.String() || s.Header("x-session-context-status") != "new" {
			t.Fatalf("logout failed: %v", s.Headers())
		}
		if len(SetCookies(s.Respond())) != 1 {
			t.Fatal("no cookie for the new session")
		}
	})
	t.Run("shared by concurrent requests", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, tok := f.idleCustomer()
		a := e.Request("GET", "/a", nil, "cookie", "__Host-sid="+tok)
		b := e.Request("GET", "/b", nil, "cookie", "__Host-sid="+tok)
		if n := len(e.Pending()); n != 1 {
			t.Fatalf("%d logout calls for one token", n)
		}
		e.Serve()
		ta, tb := CookieToken(SetCookies(a.Respond())[0]), CookieToken(SetCookies(b.Respond())[0])
		if ta == "" || ta != tb || a.Header("x-session-id") != id.String() || b.Header("x-session-id") != id.String() {
			t.Fatalf("concurrent soft logouts: tokens %q %q", ta, tb)
		}
	})
	t.Run("self-service write with an expired login", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, tok := f.idleCustomer()
		v := f.o.Sessions[id].Version
		s := e.Request("PATCH", "/.session/context", []byte(`{"public":{"a":1}}`), "cookie", "__Host-sid="+tok)
		e.Serve()
		l := s.Local()
		if l == nil || l.Status != 401 {
			t.Fatalf("PATCH with an expired login: %+v", l)
		}
		c := Claims(t, CookieToken(abi.Get(l.Headers, "set-cookie")), e.Now())
		if c.ID != id || c.Generation != 3 || f.o.Sessions[id].Version != v+1 {
			t.Fatalf("the logout did not happen or the write did: %+v, version %d", c, f.o.Sessions[id].Version)
		}
	})
}

// hintCookie returns the hint in a response's Set-Cookie headers.
func hintCookie(resp []abi.Pair) string {
	for _, c := range SetCookies(resp) {
		if v, ok := strings.CutPrefix(c, "__Host-sidv="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v
		}
	}
	return ""
}

func testReadYourWrites(t *testing.T, ng NewGuest) {
	t.Run("app write", func(t *testing.T) {
		o := NewOrigin(Start)
		o.APIKey = "edge-key"
		vms := []*Env{NewEnv(t, ng, o), NewEnv(t, ng, o)}
		vms[1].ShareData(vms[0]) // one shared-data store, as the VMs of one proxy have
		for _, e := range vms {
			e.MustConfigure(Config(baseExtra))
		}
		f := &fixture{t: t, o: o, e: vms[0]}
		id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-1")})
		for _, e := range vms { // both VMs cache version 1
			e.Request("GET", "/", nil, "cookie", cookie)
			e.Serve()
		}
		// The app adds to the cart through the origin API and reports it.
		e := vms[0]
		s := e.Request("POST", "/cart", nil, "cookie", cookie)
		sess, _ := o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-2")})
		resp := s.Respond("x-session-written", "2", "cache-control", "public, max-age=60")
		if abi.Get(resp, "x-session-written") != "" {
			t.Fatal("x-session-written reached the client")
		}
		hint := hintCookie(resp)
		if v, err := Keyring.VerifyHint([]byte(hint), id, 1); err != nil || v != sess.Version {
			t.Fatalf("hint %q: version %d, %v", hint, v, err)
		}
		for _, c := range SetCookies(resp) {
			for _, attr := range []string{"; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax", "; Max-Age="} {
				if !strings.Contains(c, attr) {
					t.Errorf("Set-Cookie %q lacks %q", c, attr)
				}
			}
		}
		if cc := abi.All(resp, "cache-control"); len(cc) != 1 || cc[0] != "private, max-age=60" {
			t.Fatalf("Cache-Control %q with a hint cookie", cc)
		}
		// Same VM, even without the hint: the older copy is not served, the
		// session is fetched at the written version.
		s = e.Request("GET", "/", nil, "cookie", cookie)
		if p := e.Pending(); len(p) != 1 || !strings.HasSuffix(p[0].Header(":path"), "?minVersion=2") {
			t.Fatalf("same VM after the write: calls %+v", p)
		}
		e.Serve()
		if s.Header("x-session-cart") != "cart-2" {
			t.Fatalf("same VM after the write: cart %q", s.Header("x-session-cart"))
		}
		// Other VM: the hint makes it fetch at least version 2.
		withHint := cookie + "; __Host-sidv=" + hint
		s = vms[1].Request("GET", "/", nil, "cookie", withHint)
		p := vms[1].Pending()
		if len(p) != 1 || !strings.HasSuffix(p[0].Header(":path"), "?minVersion=2") {
			t.Fatalf("a hint newer than the cached copy did not fetch: %+v", p)
		}
		vms[1].Serve()
		if s.Header("x-session-cart") != "cart-2" || s.Header("x-session-version") != "2" {
			t.Fatalf("other VM after the write: %v", s.Headers())
		}
		// The hint at or below the cached version costs nothing.
		s = vms[1].Request("GET", "/", nil, "cookie", withHint)
		if len(vms[1].Pending()) != 0 || s.Header("x-session-version") != "2" {
			t.Fatal("a satisfied hint fetched again")
		}
	})
	t.Run("feed delta older than the write", func(t *testing.T) {
		// The feed lags the app's write: its next batch (one delta at
		// limit 1) brings a version older than the one the app reported.
		f := newFixture(t, ng, `,"sync":{"interval":"100ms","limit":1}`)
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-1")})
		e.Tick()
		e.Serve() // joins the feed at its head
		s := e.Request("POST", "/cart", nil, "cookie", cookie)
		e.Serve() // version 1 cached
		f.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("CHF")})
		f.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-2")})
		s.Respond("x-session-written", "3")
		s.Finish()
		e.Advance(100 * time.Millisecond)
		e.Tick()
		var poll *abi.MockCall
		for _, c := range e.Pending() {
			if strings.HasPrefix(c.Header(":path"), "/v1/sync?") {
				poll = c
			} else { // the touch report
				st, b, hs := f.o.Reply(c)
				e.Answer(c, st, b, hs...)
			}
		}
		if poll == nil {
			t.Fatal("no poll")
		}
		st, b, hs := f.o.Reply(poll)
		e.Answer(poll, st, b, hs...) // version 2 reaches the cache; the full batch polls again, unanswered
		s = e.Request("GET", "/", nil, "cookie", cookie)
		var fetch *abi.MockCall
		for _, c := range e.Pending() {
			if strings.HasPrefix(c.Header(":path"), "/v1/sessions/"+id.String()) {
				fetch = c
			}
		}
		if fetch == nil || !strings.HasSuffix(fetch.Header(":path"), "?minVersion=3") {
			t.Fatalf("a feed delta older than the reported write made the VM serve version %s without a fetch (calls %+v)",
				s.Header("x-session-version"), e.Pending())
		}
		e.Serve()
		if s.Header("x-session-cart") != "cart-2" || s.Header("x-session-version") != "3" {
			t.Fatalf("after the write: %v", s.Headers())
		}
	})
	t.Run("lagging read cache", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1)
		f.o.ReadCache = map[wire.ID]*wire.Session{id: f.o.Sessions[id]}
		f.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("CHF")})
		hint := string(Keyring.AppendHint(nil, id, 1, 2))
		s := e.Request("GET", "/", nil, "cookie", cookie+"; __Host-sidv="+hint)
		e.Serve()
		if s.Header("x-session-currency") != "CHF" {
			t.Fatalf("with a hint the origin's read cache was trusted: %v", s.Headers())
		}
		g := newFixture(t, ng, "")
		g.o = f.o
		g.e.Origin = f.o
		s = g.e.Request("GET", "/", nil, "cookie", cookie)
		g.e.Serve()
		if s.Header("x-session-currency") == "CHF" {
			t.Fatal("the read cache does not lag: this test proves nothing")
		}
	})
	t.Run("hints that do not count", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1)
		other, _ := wire.NewID()
		e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve()
		otherKR, _ := wire.NewKeyring(1, map[uint8][]byte{1: []byte("another secret of 32 bytes......")})
		for name, hint := range map[string]string{
			"other key":        string(otherKR.AppendHint(nil, id, 1, 9)),
			"other session":    string(Keyring.AppendHint(nil, other, 1, 9)),
			"other generation": string(Keyring.AppendHint(nil, id, 2, 9)),
			"garbage":          strings.Repeat("A", wire.HintLen),
			"at the cached":    string(Keyring.AppendHint(nil, id, 1, 1)),
		} {
			s := e.Request("GET", "/", nil, "cookie", cookie+"; __Host-sidv="+hint)
			if len(e.Pending()) != 0 || s.Header("x-session-context-status") != "ok" {
				t.Fatalf("%s: the hint made the VM fetch", name)
			}
		}
	})
	t.Run("self-service write", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1)
		s := e.Request("PATCH", "/.session/context", []byte(`{"public":{"size":"M"}}`), "cookie", cookie, "sec-fetch-site", "same-origin")
		e.Serve()
		l := s.Local()
		if l == nil || l.Status != 200 {
			t.Fatalf("PATCH: %+v", l)
		}
		if v, err := Keyring.VerifyHint([]byte(hintCookie(l.Headers)), id, 1); err != nil || v != f.o.Sessions[id].Version {
			t.Fatalf("self-service write hint: %d, %v", v, err)
		}
		if cc := abi.Get(l.Headers, "cache-control"); !strings.Contains(cc, "private") || !strings.Contains(cc, "no-store") {
			t.Fatalf("Cache-Control %q", cc)
		}
	})
	t.Run("login reported with the write", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1)
		s := e.Request("POST", "/login", nil, "cookie", cookie)
		e.Serve()
		f.login(id, "c-1", 2)
		tok := Token(claimsAt(wire.KindCustomer, id, 2, e.Now(), 30*time.Minute, 6*time.Hour))
		resp := s.Respond("x-session-token", tok, "x-session-written", "2")
		if v, err := Keyring.VerifyHint([]byte(hintCookie(resp)), id, 2); err != nil || v != 2 {
			t.Fatalf("hint after a login: %d, %v", v, err)
		}
	})
	t.Run("token header clients", func(t *testing.T) {
		f := newFixture(t, ng, `,"tokenHeader":{"request":"sessionedge-token"}`)
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1)
		tok := strings.TrimPrefix(cookie, "__Host-sid=")
		s := e.Request("GET", "/", nil, "sessionedge-token", tok)
		e.Serve()
		f.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldLocale, Value: wire.Text("fr-CH")})
		resp := s.Respond("x-session-written", "2")
		hint := abi.Get(resp, "sessionedge-token-hint")
		if len(SetCookies(resp)) != 0 || hint == "" {
			t.Fatalf("header client response %v", resp)
		}
		// Another VM caches version 1; the hint header makes it fetch.
		g := newFixture(t, ng, `,"tokenHeader":{"request":"sessionedge-token"}`)
		g.o, g.e.Origin = f.o, f.o
		g.e.Request("GET", "/", nil, "sessionedge-token", tok)
		g.e.Serve()
		s = g.e.Request("GET", "/", nil, "sessionedge-token", tok, "sessionedge-token-hint", hint)
		g.e.Serve()
		if s.Header("x-session-locale") != "fr-CH" || s.Header("sessionedge-token-hint") != "" || s.Header("sessionedge-token") != "" {
			t.Fatalf("header client with a hint: %v", s.Headers())
		}
	})
}

// idleCustomer makes a logged-in session at generation 2 with a cart,
// privacy and custom data at the origin, and returns an idle-expired token
// of it.
func (f *fixture) idleCustomer() (wire.ID, string) {
	id, _ := wire.NewID()
	if _, err := f.o.Write(id,
		wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-9")},
		wire.Op{Code: wire.OpLogin, CustomerID: "c-7", Generation: 2},
		wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePrivacy, Key: "email", Value: wire.Text("a@b.c")},
		wire.Op{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "seg", Value: wire.Text("gold")}); err != nil {
		f.t.Fatal(err)
	}
	now := f.e.Now().Unix()
	return id, Token(wire.Claims{Kind: wire.KindCustomer, ID: id, Generation: 2, IssuedAt: now - 3600, IdleDeadline: now - 1, HardDeadline: now + 3600})
}
