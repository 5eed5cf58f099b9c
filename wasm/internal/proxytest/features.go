//go:build !wasip1

package proxytest

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// Scenarios of what the edge adds to sessions: the segment in the
// forwarded view, site defaults and devices carried to the origin, the
// shopper-settable fields and consent, the shopper's list of sessions, and
// captured attributes.

// ForwardedView decodes the x-session-context header of s as a forwarded
// view and returns it with its segment.
func ForwardedView(t testing.TB, s *Stream) (*wire.Session, string) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s.Header("x-session-context"))
	if err != nil {
		t.Fatalf("x-session-context is not base64url: %v", err)
	}
	var sess wire.Session
	seg, err := wire.DecodeForwardView(raw, &sess, &wire.DefaultLimits)
	if err != nil {
		t.Fatalf("x-session-context is not a forwarded view: %v", err)
	}
	return &sess, seg
}

// reportTouches lets one sync interval (100ms) pass and returns the touch
// reports the VM posted, then serves every call: the touch reports last,
// so the feed poll of the same tick never brings back what they create.
func reportTouches(t testing.TB, e *Env) []wire.Touch {
	t.Helper()
	e.Advance(100 * time.Millisecond)
	e.Tick()
	var ts []wire.Touch
	var posts []*abi.MockCall
	for _, c := range e.Pending() {
		if c.Header(":path") == "/v1/sync/touch" {
			got, err := wire.DecodeTouches(c.Body, nil)
			if err != nil {
				t.Fatalf("touch report: %v", err)
			}
			ts = append(ts, got...)
			posts = append(posts, c)
			continue
		}
		st, b, hs := e.Origin.Reply(c)
		e.Answer(c, st, b, hs...)
	}
	for _, c := range posts {
		st, b, hs := e.Origin.Reply(c)
		e.Answer(c, st, b, hs...)
	}
	e.Serve()
	return ts
}

// touchOf returns the report of session id in ts.
func touchOf(t testing.TB, ts []wire.Touch, id wire.ID) *wire.Touch {
	t.Helper()
	for i := range ts {
		if ts[i].ID == id {
			return &ts[i]
		}
	}
	t.Fatalf("no touch report of %s in %+v", id, ts)
	return nil
}

// initFields returns the fields and public attributes set by Init ops.
func initFields(ops []wire.Op) map[string]string {
	m := map[string]string{}
	for _, op := range ops {
		switch op.Code {
		case wire.OpSetField:
			if op.Value.Type == wire.TypeBool {
				m[op.Field.String()] = map[bool]string{true: "true", false: "false"}[op.Value.BoolValue()]
			} else {
				m[op.Field.String()] = op.Value.Text
			}
		case wire.OpSetAttr:
			m["public."+op.Key] = op.Value.Text
		default:
			m["op"] = op.Code.String()
		}
	}
	return m
}

// mintToken mints a session with a request (extra headers kv) and returns
// its id and token.
func mintToken(t testing.TB, e *Env, path string, kv ...string) (wire.ID, string) {
	t.Helper()
	s := e.Request("GET", path, nil, kv...)
	id, err := wire.ParseID(s.Header("x-session-id"))
	if err != nil {
		t.Fatalf("minted session id %q: %v", s.Header("x-session-id"), err)
	}
	cookies := SetCookies(s.Respond())
	if len(cookies) != 1 {
		t.Fatalf("minting request set cookies %q", cookies)
	}
	s.Finish()
	return id, CookieToken(cookies[0])
}

func testForwardSegment(t *testing.T, ng NewGuest) {
	for _, mode := range []string{"", `,"forward":{"mode":"compact"}`} {
		f := newFixture(t, ng, mode)
		e := f.e
		fields := mode == ""
		check := func(s *Stream, what string) {
			t.Helper()
			v, seg := ForwardedView(t, s)
			if len(seg) != wire.SegmentLen || seg != string(wire.AppendSegment(nil, v)) {
				t.Fatalf("%s: the view's segment %q is not the segment of its fields", what, seg)
			}
			if fields && s.Header("x-session-segment") != seg {
				t.Fatalf("%s: x-session-segment %q, the view says %q", what, s.Header("x-session-segment"), seg)
			}
		}
		s := e.Request("GET", "/", nil)
		check(s, "minted")
		_, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("CHF")})
		s = e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve()
		check(s, "fetched")
		if v, _ := ForwardedView(t, s); v.Fields[wire.FieldCurrency].Text != "CHF" {
			t.Fatalf("fetched view %+v", v.Fields)
		}
		if !fields {
			_, other := f.session(wire.KindAnonymous, 1)
			s = e.Request("GET", "/", nil, "cookie", other)
			e.Answer(e.Pending()[0], 503, nil)
			check(s, "degraded")
		}
	}
}

func testSiteDefaultsAtOrigin(t *testing.T, ng NewGuest) {
	const ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
	want := map[string]string{"siteCode": "DE", "currency": "EUR", "targetLocation": "DE", "locale": "de-DE"}
	t.Run("touch report", func(t *testing.T) {
		f := newFixture(t, ng, syncConfig)
		e := f.e
		e.Tick()
		e.Serve() // the VM follows the feed (starting to, it drops what it cached)
		id, tok := mintToken(t, e, "/", "user-agent", ua)
		if ts := reportTouches(t, e); len(ts) != 0 {
			t.Fatalf("a one-shot session was reported: %+v", ts)
		}
		e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok, "user-agent", ua).Finish()
		x := touchOf(t, reportTouches(t, e), id)
		if got := initFields(x.Init); len(got) != len(want) || got["currency"] != "EUR" || got["locale"] != "de-DE" ||
			got["siteCode"] != "DE" || got["targetLocation"] != "DE" {
			t.Fatalf("Touch.Init %v, want the site's defaults %v", got, want)
		}
		dev := wire.Device{UserAgent: ua, Addr: "192.0.2.0/24", Site: "DE"}
		if x.Device != dev {
			t.Fatalf("Touch.Device %+v, want %+v", x.Device, dev)
		}
		// The origin's copy carries what the shopper saw.
		sess := f.o.Sessions[id]
		if sess == nil || sess.Fields[wire.FieldCurrency].Text != "EUR" || sess.Fields[wire.FieldLocale].Text != "de-DE" ||
			sess.FirstDevice != dev || sess.Device != dev {
			t.Fatalf("origin session %+v", sess)
		}
		// A later touch from another client: the origin records it.
		e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok, "user-agent", "curl/8.0").Finish()
		x = touchOf(t, reportTouches(t, e), id)
		if x.Device.UserAgent != "curl/8.0" {
			t.Fatalf("second touch device %+v", x.Device)
		}
		if sess := f.o.Sessions[id]; sess.Device.UserAgent != "curl/8.0" || sess.FirstDevice != dev {
			t.Fatalf("origin devices after the second client: first %+v, last %+v", sess.FirstDevice, sess.Device)
		}
	})
	t.Run("unknown to the origin", func(t *testing.T) {
		// A token minted by another VM or edge comes back here first.
		f := newFixture(t, ng, syncConfig)
		e := f.e
		id, _ := wire.NewID()
		cookie := cookieOf(claimsAt(wire.KindAnonymous, id, 1, e.Now(), time.Hour, 24*time.Hour))
		s := e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve() // 404: a session the origin has not heard of yet
		if s.Header("x-session-context-status") != "new" || s.Header("x-session-currency") != "EUR" {
			t.Fatalf("unknown session forwarded %v", s.Headers())
		}
		x := touchOf(t, reportTouches(t, e), id)
		if got := initFields(x.Init); got["currency"] != "EUR" || got["siteCode"] != "DE" {
			t.Fatalf("Touch.Init of an unknown session %v", got)
		}
		if sess := f.o.Sessions[id]; sess == nil || sess.Fields[wire.FieldSiteCode].Text != "DE" {
			t.Fatalf("origin session %+v", sess)
		}
	})
	t.Run("self-service write creates", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		id, tok := mintToken(t, e, "/", "user-agent", ua)
		s := e.Request("PATCH", "/.session/context", []byte(`{"public":{"theme":"dark"}}`), "cookie", "__Host-sid="+tok, "user-agent", ua)
		e.Serve()
		if l := s.Local(); l == nil || l.Status != 200 {
			t.Fatalf("PATCH: %+v", s.Local())
		}
		if len(f.o.Inits) != 1 {
			t.Fatalf("X-Session-Init sent %d times, want once", len(f.o.Inits))
		}
		raw, err := base64.RawURLEncoding.DecodeString(f.o.Inits[0])
		if err != nil {
			t.Fatalf("X-Session-Init is not base64url: %v", err)
		}
		ts, err := wire.DecodeTouches(raw, nil)
		if err != nil || len(ts) != 1 || ts[0].ID != id || ts[0].Generation != 1 || ts[0].Kind != wire.KindAnonymous {
			t.Fatalf("X-Session-Init holds %+v, %v", ts, err)
		}
		if got := initFields(ts[0].Init); got["currency"] != "EUR" || ts[0].Device.UserAgent != ua {
			t.Fatalf("X-Session-Init: init %v, device %+v", got, ts[0].Device)
		}
		sess := f.o.Sessions[id]
		if sess == nil || sess.Fields[wire.FieldCurrency].Text != "EUR" || sess.Device.UserAgent != ua {
			t.Fatalf("origin session %+v", sess)
		}
		if v, _ := sess.Attr(wire.NamespacePublic, "theme"); v.Text != "dark" {
			t.Fatalf("the write was not applied: %+v", sess.Attrs)
		}
		// A write to the stored session sends no X-Session-Init.
		s = e.Request("PATCH", "/.session/context", []byte(`{"public":{"theme":"light"}}`), "cookie", "__Host-sid="+tok)
		e.Serve()
		if l := s.Local(); l == nil || l.Status != 200 || len(f.o.Inits) != 1 {
			t.Fatalf("second PATCH: %+v, %d X-Session-Init", s.Local(), len(f.o.Inits))
		}
	})
}

// fieldsSites offers two currencies and two locations on the shop's site.
const fieldsSites = `,"sites":{"shop.example.com":{"siteCode":"DE","currency":"EUR","targetLocation":"DE","locale":"de-DE",` +
	`"currencies":["EUR","CHF"],"targetLocations":["DE","AT"]},"*":{"siteCode":"INT","currency":"USD"}}`

func testShopperFields(t *testing.T, ng NewGuest) {
	t.Run("allowed lists", func(t *testing.T) {
		f := newFixture(t, ng, fieldsSites+`,"consent":{"cookie":"se_dnt"}`)
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1)
		patch := func(body string) *Stream {
			s := e.Request("PATCH", "/.session/context", []byte(body), "cookie", cookie)
			e.Serve()
			if s.Local() == nil {
				t.Fatalf("PATCH %s not answered", body)
			}
			return s
		}
		n := len(f.o.Requests)
		for body, field := range map[string]string{
			`{"currency":"USD"}`:          "currency",
			`{"targetLocation":"FR"}`:     "targetLocation",
			`{"siteCode":"CH"}`:           "siteCode",
			`{"locale":"fr-FR"}`:          "locale",
			`{"cartId":"c-1"}`:            "cartId",
			`{"customerId":"c-1"}`:        "customerId",
			`{"trackingAllowed":"yes"}`:   "trackingAllowed",
			`{"currency":1}`:              "currency",
			`{"privacy":{"email":"x"}}`:   "privacy",
			`{"custom":{"a":1}}`:          "custom",
			`{"public":{"ok":1},"x":"y"}`: "x",
		} {
			s := patch(body)
			if l := s.Local(); l.Status != 400 || !strings.Contains(string(l.Body), `"field":"`+field+`"`) {
				t.Fatalf("PATCH %s: %d %s, want 400 naming %s", body, l.Status, l.Body, field)
			}
		}
		if len(f.o.Requests) != n {
			t.Fatalf("refused writes reached the origin: %v", f.o.Requests[n:])
		}
		s := patch(`{"currency":"CHF","targetLocation":"AT","trackingAllowed":true,"public":{"size":"M"}}`)
		if l := s.Local(); l.Status != 200 || !strings.Contains(string(l.Body), `"currency":"CHF"`) ||
			!strings.Contains(string(l.Body), `"trackingAllowed":true`) {
			t.Fatalf("PATCH allowed values: %d %s", l.Status, l.Body)
		}
		sess := f.o.Sessions[id]
		if sess.Fields[wire.FieldCurrency].Text != "CHF" || sess.Fields[wire.FieldTargetLocation].Text != "AT" ||
			!sess.Fields[wire.FieldTrackingAllowed].BoolValue() {
			t.Fatalf("origin fields %+v", sess.Fields)
		}
		if hintCookie(s.Local().Headers) == "" {
			t.Fatal("no consistency hint after the write")
		}
		s = e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve()
		if s.Header("x-session-currency") != "CHF" || s.Header("x-session-location") != "AT" || s.Header("x-session-tracking") != "true" {
			t.Fatalf("after the write: %v", s.Headers())
		}
		// The consent cookie: tracking off for this request only.
		s = e.Request("GET", "/", nil, "cookie", cookie+"; se_dnt=1")
		if v, _ := ForwardedView(t, s); s.Header("x-session-tracking") != "false" || v.Fields[wire.FieldTrackingAllowed].BoolValue() {
			t.Fatalf("with the consent cookie: tracking %q, view %+v", s.Header("x-session-tracking"), v.Fields)
		}
		if s = e.Request("GET", "/", nil, "cookie", cookie); s.Header("x-session-tracking") != "true" {
			t.Fatalf("without the consent cookie again: tracking %q", s.Header("x-session-tracking"))
		}
		// null: back to the site's default.
		s = patch(`{"currency":null}`)
		if l := s.Local(); l.Status != 200 || !strings.Contains(string(l.Body), `"currency":"EUR"`) {
			t.Fatalf("PATCH null: %d %s", l.Status, l.Body)
		}
		if !f.o.Sessions[id].Fields[wire.FieldCurrency].IsZero() {
			t.Fatalf("currency not unset at the origin: %+v", f.o.Sessions[id].Fields)
		}
	})
	t.Run("defaults only", func(t *testing.T) {
		f := newFixture(t, ng, `,"selfService":{"fields":["currency"]}`)
		e := f.e
		_, cookie := f.session(wire.KindAnonymous, 1)
		for body, status := range map[string]uint32{`{"currency":"EUR"}`: 200, `{"currency":"CHF"}`: 400, `{"trackingAllowed":false}`: 400} {
			s := e.Request("PATCH", "/.session/context", []byte(body), "cookie", cookie)
			e.Serve()
			if l := s.Local(); l == nil || l.Status != status {
				t.Fatalf("PATCH %s: %+v, want %d", body, l, status)
			}
		}
	})
}

func testDevices(t *testing.T, ng NewGuest) {
	long := strings.Repeat("a", 255) + "ü" + "tail" // the cut falls inside ü
	cases := []struct {
		name, extra, ua string
		want            wire.Device
	}{
		{"default prefix", "", "Mozilla/5.0", wire.Device{UserAgent: "Mozilla/5.0", Addr: "192.0.2.0/24", Site: "DE"}},
		{"shorter prefix", `,"device":{"addrPrefix":{"v4":16}}`, "x", wire.Device{UserAgent: "x", Addr: "192.0.0.0/16", Site: "DE"}},
		{"no address", `,"device":{"addrPrefix":"none"}`, "x", wire.Device{UserAgent: "x", Site: "DE"}},
		{"long user agent", "", long, wire.Device{UserAgent: strings.Repeat("a", 255), Addr: "192.0.2.0/24", Site: "DE"}},
		{"not UTF-8", "", "a\xffb\xc3", wire.Device{UserAgent: "a?b?", Addr: "192.0.2.0/24", Site: "DE"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ng, syncConfig+c.extra)
			e := f.e
			id, cookie := f.session(wire.KindAnonymous, 1)
			s := e.Request("GET", "/", nil, "cookie", cookie, "user-agent", c.ua)
			e.Serve()
			s.Finish()
			x := touchOf(t, reportTouches(t, e), id)
			if x.Device != c.want || !utf8.ValidString(x.Device.UserAgent) || len(x.Device.UserAgent) > wire.MaxDeviceText {
				t.Fatalf("device %+v, want %+v", x.Device, c.want)
			}
			if len(x.Init) != 0 {
				t.Fatalf("a stored session's touch carries Init %+v", x.Init)
			}
		})
	}
}

// peersList is the JSON of the self-service sessions list.
type peersList struct {
	Sessions []struct {
		Current      bool
		Kind, Handle string
		Created      string
		Device       *wire.Device
		ID           string // never sent: sessions are named by their handle
	}
}

func testSessionsList(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, syncConfig)
	e := f.e
	e.Tick()
	e.Serve() // the VM joins the feed
	// Two sessions of one customer: this browser's and another device's.
	mine, cookie := f.session(wire.KindCustomer, 2, wire.Op{Code: wire.OpLogin, CustomerID: "c-1", Generation: 2},
		wire.Op{Code: wire.OpDevice, Device: wire.Device{UserAgent: "this", Site: "DE"}})
	other, otherCookie := f.session(wire.KindCustomer, 2, wire.Op{Code: wire.OpLogin, CustomerID: "c-1", Generation: 2},
		wire.Op{Code: wire.OpDevice, Device: wire.Device{UserAgent: "phone", Site: "DE"}})
	e.Request("GET", "/", nil, "cookie", otherCookie).Finish()
	e.Serve() // the other session is cached here too

	s := e.Request("GET", "/.session/sessions", nil, "cookie", cookie)
	e.Serve()
	l := s.Local()
	if l == nil || l.Status != 200 {
		t.Fatalf("GET sessions: %+v", l)
	}
	var list peersList
	if err := json.Unmarshal(l.Body, &list); err != nil || len(list.Sessions) != 2 {
		t.Fatalf("GET sessions body %s: %v", l.Body, err)
	}
	current := 0
	for _, p := range list.Sessions {
		if p.Current {
			current++
			if p.Device == nil || p.Device.UserAgent != "this" {
				t.Fatalf("the current session's device %+v", p.Device)
			}
		}
		if len(p.Handle) != 16 || p.Kind != "customer" || p.ID != "" || p.Created == "" {
			t.Fatalf("listed session %+v", p)
		}
	}
	if current != 1 || strings.Contains(string(l.Body), mine.String()) || strings.Contains(string(l.Body), other.String()) {
		t.Fatalf("the list marks %d sessions current or shows ids: %s", current, l.Body)
	}
	if ct := abi.Get(l.Headers, "content-type"); ct != "application/json" {
		t.Fatalf("content-type %q", ct)
	}
	for _, c := range e.Pending() {
		t.Fatalf("call left pending: %+v", c)
	}

	if !list.Sessions[0].Current {
		t.Fatal("the current session is not listed first")
	}

	// Log out the other devices. The revoke leaves this session as it was:
	// no hint.
	s = e.Request("DELETE", "/.session/sessions/others", nil, "cookie", cookie, "origin", "https://shop.example.com")
	e.Serve()
	if l := s.Local(); l == nil || l.Status != 200 || string(l.Body) != `{"revoked":1}` {
		t.Fatalf("DELETE sessions/others: %+v", l)
	}
	if hint := hintCookie(s.Local().Headers); hint != "" {
		t.Fatalf("a hint after a revoke that did not change the session: %q", hint)
	}
	if f.o.Sessions[other].Ended != wire.EndRevoked || f.o.Sessions[mine].Ended != 0 {
		t.Fatal("the revoke did not end exactly the other session")
	}
	e.Advance(100 * time.Millisecond)
	e.Tick()
	e.Serve() // the feed brings the end of the other session
	if s := e.Request("GET", "/", nil, "cookie", otherCookie); s.Header("x-session-id") == other.String() {
		t.Fatal("a revoked session is still served")
	}

	// Refusals: cross-site, no session, wrong method.
	n := len(f.o.Requests)
	for _, c := range []struct {
		method, path string
		kv           []string
		status       uint32
	}{
		{"DELETE", "/.session/sessions/others", []string{"cookie", cookie, "sec-fetch-site", "cross-site"}, 403},
		{"GET", "/.session/sessions", []string{"cookie", cookie, "origin", "https://evil.example"}, 403},
		{"GET", "/.session/sessions", nil, 401},
		{"DELETE", "/.session/sessions/others", nil, 401},
		{"POST", "/.session/sessions", []string{"cookie", cookie}, 405},
		{"GET", "/.session/sessions/others", []string{"cookie", cookie}, 405},
	} {
		s := e.Request(c.method, c.path, nil, c.kv...)
		e.Serve()
		if l := s.Local(); l == nil || l.Status != c.status {
			t.Fatalf("%s %s %v: %+v, want %d", c.method, c.path, c.kv, l, c.status)
		}
	}
	if len(f.o.Requests) != n {
		t.Fatalf("refused requests reached the origin: %v", f.o.Requests[n:])
	}
	// A dead token: 401.
	s = e.Request("GET", "/.session/sessions", nil, "cookie", otherCookie)
	e.Serve()
	if l := s.Local(); l == nil || l.Status != 401 {
		t.Fatalf("revoked token: %+v", l)
	}
	// An origin that reports the session's version after the revoke: the
	// client gets the consistency hint for it.
	f.o.RevokeVersion = true
	s = e.Request("DELETE", "/.session/sessions/others", nil, "cookie", cookie)
	e.Serve()
	if l := s.Local(); l == nil || l.Status != 200 || !strings.Contains(string(l.Body), `"revoked":0`) {
		t.Fatalf("second revoke: %+v", l)
	}
	if hint := hintCookie(s.Local().Headers); hint == "" {
		t.Fatal("no consistency hint after a revoke that reports the session's version")
	} else if v, err := Keyring.VerifyHint([]byte(hint), mine, 2); err != nil || v != f.o.Sessions[mine].Version {
		t.Fatalf("hint %q: version %d, %v", hint, v, err)
	}

	// A session the origin has not heard of yet lists itself alone and has
	// nothing to revoke.
	_, tok := mintToken(t, e, "/", "user-agent", "fresh")
	s = e.Request("GET", "/.session/sessions", nil, "cookie", "__Host-sid="+tok, "user-agent", "fresh")
	e.Serve()
	list = peersList{}
	if l := s.Local(); l == nil || l.Status != 200 || json.Unmarshal(l.Body, &list) != nil || len(list.Sessions) != 1 ||
		!list.Sessions[0].Current || list.Sessions[0].Kind != "anonymous" || len(list.Sessions[0].Handle) != 16 ||
		list.Sessions[0].Device == nil || list.Sessions[0].Device.UserAgent != "fresh" {
		t.Fatalf("sessions of a new session: %+v", s.Local())
	}
	s = e.Request("DELETE", "/.session/sessions/others", nil, "cookie", "__Host-sid="+tok)
	e.Serve()
	if l := s.Local(); l == nil || l.Status != 200 || string(l.Body) != `{"revoked":0}` {
		t.Fatalf("revoke of a new session: %+v", s.Local())
	}
}

// captureConfig captures three query parameters and two cookies (cc as
// both), the utm ones as tracking, cc in the segment.
const captureConfig = syncConfig + `,"capture":{"query":["utm_source","utm_campaign","cc"],"cookies":["ab","cc"],` +
	`"tracking":["utm_source","utm_campaign"],"segment":["cc"],"maxValueLen":20,"maxCount":3},"consent":{"cookie":"se_dnt"}`

func testCaptures(t *testing.T, ng NewGuest) {
	public := func(t *testing.T, s *Stream) map[string]string {
		t.Helper()
		v, _ := ForwardedView(t, s)
		m := map[string]string{}
		for _, a := range v.Attrs[wire.NamespacePublic] {
			m[a.Key] = a.Value.Text
		}
		return m
	}
	t.Run("minted", func(t *testing.T) {
		f := newFixture(t, ng, captureConfig)
		e := f.e
		e.Tick()
		e.Serve() // the VM follows the feed (starting to, it drops what it cached)
		s := e.Request("GET", "/landing?utm_source=news%20letter&x=1&cc=ch", nil)
		got := public(t, s)
		if got["utm_source"] != "news letter" || got["cc"] != "ch" || len(got) != 2 {
			t.Fatalf("captured %v", got)
		}
		v, seg := ForwardedView(t, s)
		if seg == string(wire.AppendSegment(nil, v)) || s.Header("x-session-segment") != seg {
			t.Fatalf("the segment %q leaves out the captured cc", seg)
		}
		id, _ := wire.ParseID(s.Header("x-session-id"))
		tok := CookieToken(SetCookies(s.Respond())[0])
		s.Finish()
		// The values stay with the session, and reach the origin with its
		// first report.
		s = e.Request("GET", "/next", nil, "cookie", "__Host-sid="+tok)
		if got := public(t, s); got["utm_source"] != "news letter" {
			t.Fatalf("next request: %v", got)
		}
		x := touchOf(t, reportTouches(t, e), id)
		if init := initFields(x.Init); init["public.utm_source"] != "news letter" || init["public.cc"] != "ch" || init["currency"] != "EUR" {
			t.Fatalf("Touch.Init %v", init)
		}
		if v, _ := f.o.Sessions[id].Attr(wire.NamespacePublic, "cc"); v.Text != "ch" {
			t.Fatalf("origin session %+v", f.o.Sessions[id].Attrs)
		}
		// A new value once the token came back: the origin may have
		// created the session already, so it is written (with
		// X-Session-Init, in case it has not).
		s = e.Request("GET", "/?cc=at", nil, "cookie", "__Host-sid="+tok)
		if got := public(t, s); got["cc"] != "at" || !s.Forwarded() {
			t.Fatalf("new value: %v", got)
		}
		var write bool
		for _, c := range e.Pending() {
			write = write || c.Header(":method") == "PATCH" && c.Header("x-session-init") != ""
		}
		if !write {
			t.Fatalf("no capture write with X-Session-Init: %+v", e.Pending())
		}
		e.Serve()
		if v, _ := f.o.Sessions[id].Attr(wire.NamespacePublic, "cc"); v.Text != "at" {
			t.Fatalf("origin session after the write %+v", f.o.Sessions[id].Attrs)
		}
		if s = e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok); s.Header("x-session-context-status") != "ok" || public(t, s)["cc"] != "at" {
			t.Fatalf("after the write: %v", s.Headers())
		}
	})
	t.Run("another VM", func(t *testing.T) {
		// The VMs of one proxy: the landing page reaches one, the next
		// pages others (a proxy spreads requests over its VMs), before
		// the origin has heard of the session.
		o := NewOrigin(Start)
		o.APIKey = "edge-key"
		vms := []*Env{NewEnv(t, ng, o), NewEnv(t, ng, o), NewEnv(t, ng, o)}
		for _, e := range vms {
			if e != vms[0] {
				e.ShareData(vms[0])
			}
			e.MustConfigure(Config(baseExtra + captureConfig))
			e.Tick()
			e.Serve()
		}
		id, tok := mintToken(t, vms[0], "/?utm_campaign=spring&cc=ch")
		for _, c := range o.Requests {
			if !strings.HasPrefix(c, "GET /v1/sync?") {
				t.Fatalf("the landing page cost the origin a call: %v", o.Requests)
			}
		}
		e := vms[1]
		s := e.Request("GET", "/next", nil, "cookie", "__Host-sid="+tok)
		e.Serve() // the origin has not heard of it: 404
		if got := public(t, s); got["utm_campaign"] != "spring" || got["cc"] != "ch" || s.Header("x-session-context-status") != "new" {
			t.Fatalf("the next page through another VM lost the captured values: %v, %v", got, s.Headers())
		}
		if _, seg := ForwardedView(t, s); s.Header("x-session-segment") != seg {
			t.Fatalf("segment %q, header %q", seg, s.Header("x-session-segment"))
		}
		s.Finish()
		x := touchOf(t, reportTouches(t, e), id)
		if init := initFields(x.Init); init["public.utm_campaign"] != "spring" || init["public.cc"] != "ch" || init["currency"] != "EUR" {
			t.Fatalf("the other VM's first report: Touch.Init %v", init)
		}
		if v, _ := o.Sessions[id].Attr(wire.NamespacePublic, "utm_campaign"); v.Text != "spring" {
			t.Fatalf("the origin's copy lacks the campaign: %+v", o.Sessions[id].Attrs)
		}
		// A self-service write through a third VM that creates the session
		// carries them in X-Session-Init.
		id2, tok2 := mintToken(t, vms[0], "/?utm_campaign=autumn")
		e = vms[2]
		s = e.Request("PATCH", "/.session/context", []byte(`{"public":{"size":"M"}}`), "cookie", "__Host-sid="+tok2)
		e.Serve()
		if l := s.Local(); l == nil || l.Status != 200 || !strings.Contains(string(l.Body), `"utm_campaign":"autumn"`) {
			t.Fatalf("self-service write through another VM: %+v", l)
		}
		if v, _ := o.Sessions[id2].Attr(wire.NamespacePublic, "utm_campaign"); v.Text != "autumn" {
			t.Fatalf("X-Session-Init lacks the campaign: %+v", o.Sessions[id2].Attrs)
		}
	})
	t.Run("stored", func(t *testing.T) {
		f := newFixture(t, ng, captureConfig)
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "cc", Value: wire.Text("de")})
		e.Request("GET", "/", nil, "cookie", cookie).Finish()
		e.Serve()
		n := len(f.o.Requests)
		// A value the session holds already: nothing to write.
		s := e.Request("GET", "/?cc=de", nil, "cookie", cookie)
		if len(e.Pending()) != 0 || public(t, s)["cc"] != "de" {
			t.Fatalf("same value: calls %+v", e.Pending())
		}
		// A new value: forwarded at once, written without holding the request.
		s = e.Request("GET", "/?utm_campaign=spring&cc=ch", nil, "cookie", cookie)
		if !s.Forwarded() {
			t.Fatal("the request waited for the capture write")
		}
		if got := public(t, s); got["utm_campaign"] != "spring" || got["cc"] != "ch" {
			t.Fatalf("forwarded %v", got)
		}
		p := e.Pending()
		if len(p) != 1 || p[0].Header(":method") != "PATCH" || p[0].Header(":path") != "/v1/sessions/"+id.String()+"/context" ||
			p[0].Header("x-session-token") != strings.TrimPrefix(cookie, "__Host-sid=") || p[0].Header("x-session-init") != "" {
			t.Fatalf("capture write %+v", p)
		}
		var body map[string]map[string]string
		if err := json.Unmarshal(p[0].Body, &body); err != nil || len(body) != 1 || body["public"]["utm_campaign"] != "spring" || body["public"]["cc"] != "ch" {
			t.Fatalf("capture write body %s", p[0].Body)
		}
		e.Serve()
		if v, _ := f.o.Sessions[id].Attr(wire.NamespacePublic, "cc"); v.Text != "ch" {
			t.Fatal("capture not stored at the origin")
		}
		// The origin's answer is cached: the values stay without a fetch.
		s = e.Request("GET", "/", nil, "cookie", cookie)
		if got := public(t, s); got["cc"] != "ch" || got["utm_campaign"] != "spring" || len(e.Pending()) != 0 {
			t.Fatalf("after the write: %v, calls %+v", got, e.Pending())
		}
		if len(f.o.Requests) != n+1 {
			t.Fatalf("origin calls %v", f.o.Requests[n:])
		}
		// An origin failure costs the request nothing.
		f.o.Fail = map[string]int{"PATCH /v1/sessions/" + id.String() + "/context": 503}
		s = e.Request("GET", "/?cc=at", nil, "cookie", cookie)
		e.Serve()
		if !s.Forwarded() || public(t, s)["cc"] != "at" || s.Header("x-session-context-status") != "ok" {
			t.Fatalf("with a failing write: %v", s.Headers())
		}
		if !e.Logged("captured attributes not stored") {
			t.Fatalf("the failed write was not logged: %v", e.Logs())
		}
	})
	t.Run("limits", func(t *testing.T) {
		f := newFixture(t, ng, captureConfig)
		e := f.e
		for _, c := range []struct {
			path string
			kv   []string
			want map[string]string
		}{
			{"/?utm_source=" + strings.Repeat("x", 21), nil, map[string]string{}}, // longer than maxValueLen
			{"/?utm_source=" + strings.Repeat("%41", 20), nil, map[string]string{"utm_source": strings.Repeat("A", 20)}},
			{"/?utm_source=%zz&cc=%ff", nil, map[string]string{}},                                    // malformed, not UTF-8
			{"/?cc=ch&cc=at", nil, map[string]string{"cc": "ch"}},                                    // the first wins
			{"/?cc=ch", []string{"cookie", "cc=de; ab=b"}, map[string]string{"cc": "ch", "ab": "b"}}, // the query wins
			{"/?utm_source=a&utm_campaign=b&cc=c", []string{"cookie", "ab=x"}, nil},                  // maxCount 3
			{"/?UTM_SOURCE=a&utm_source&cc=", nil, map[string]string{}},                              // names as sent, empty values
		} {
			s := e.Request("GET", c.path, nil, c.kv...)
			got := public(t, s)
			if c.want == nil {
				if len(got) != 3 || got["ab"] != "x" {
					t.Fatalf("%s %v: captured %v, want 3 with the cookie", c.path, c.kv, got)
				}
				continue
			}
			if len(got) != len(c.want) {
				t.Fatalf("%s %v: captured %v, want %v", c.path, c.kv, got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Fatalf("%s %v: captured %v, want %v", c.path, c.kv, got, c.want)
				}
			}
		}
	})
	t.Run("consent", func(t *testing.T) {
		f := newFixture(t, ng, captureConfig)
		e := f.e
		s := e.Request("GET", "/?utm_source=news&cc=ch", nil, "cookie", "se_dnt=1")
		got := public(t, s)
		if _, ok := got["utm_source"]; ok || got["cc"] != "ch" {
			t.Fatalf("with the consent cookie captured %v", got)
		}
		v, seg := ForwardedView(t, s)
		if seg != string(wire.AppendSegment(nil, v)) || s.Header("x-session-tracking") != "false" {
			t.Fatalf("with the consent cookie: segment %q uses captured values, tracking %q", seg, s.Header("x-session-tracking"))
		}
	})
	t.Run("self-service and skip paths", func(t *testing.T) {
		f := newFixture(t, ng, captureConfig+`,"mint":{"skipPaths":["/static/"]}`)
		e := f.e
		s := e.Request("GET", "/static/a.css?cc=ch", nil)
		if s.Header("x-session-context") != "" {
			t.Fatal("a skip path got a session")
		}
		_, tok := mintToken(t, e, "/")
		s = e.Request("GET", "/.session/context?cc=ch", nil, "cookie", "__Host-sid="+tok)
		if l := s.Local(); l == nil || l.Status != 200 || strings.Contains(string(l.Body), `"cc"`) {
			t.Fatalf("self-service request captured: %+v", l)
		}
	})
}
