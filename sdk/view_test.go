package sdk

import (
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// edgeSegment is the segment the test edge sends in its views: not what
// wire.AppendSegment computes, so a View that recomputed it would show.
const edgeSegment = "00112233aabbccdd"

// contextHeader encodes s the way the edge does for x-session-context,
// with the edge's segment.
func contextHeader(s *wire.Session, namespaces uint8) string {
	return base64.RawURLEncoding.EncodeToString(wire.AppendForwardView(nil, s, namespaces, []byte(edgeSegment)))
}

func TestParseView(t *testing.T) {
	id, _ := wire.ParseID(testID)
	s := &wire.Session{ID: id, Kind: wire.KindCustomer, Generation: 2, Version: 9}
	s.Fields[wire.FieldCurrency] = wire.Text("USD")
	s.Fields[wire.FieldCustomerID] = wire.Text("c-1")
	s.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("theme", wire.Text("dark"))
	s.Attrs[wire.NamespacePrivacy] = wire.Attrs{}.With("email", wire.Text("x@y.z"))
	forwarded := uint8(1<<wire.NamespaceCustom | 1<<wire.NamespacePublic)

	tests := []struct {
		name    string
		headers map[string]string
		wantErr error
		check   func(t *testing.T, v *View)
	}{
		{name: "no headers", headers: nil, wantErr: ErrNoSession},
		{name: "bad id", headers: map[string]string{HeaderID: "short"}, wantErr: ErrBadHeaders},
		{name: "bad kind", headers: map[string]string{HeaderID: testID, HeaderKind: "admin"}, wantErr: ErrBadHeaders},
		{name: "bad version", headers: map[string]string{HeaderID: testID, HeaderVersion: "-1"}, wantErr: ErrBadHeaders},
		{name: "bad context", headers: map[string]string{HeaderID: testID, HeaderContext: "!!"}, wantErr: ErrBadHeaders},
		{name: "broken CBOR", headers: map[string]string{HeaderID: testID, HeaderContext: "_w"}, wantErr: ErrBadHeaders},
		{
			name: "full context",
			headers: map[string]string{HeaderID: testID, HeaderKind: "customer", HeaderVersion: "9", HeaderGeneration: "2",
				HeaderContext: contextHeader(s, forwarded), HeaderContextStatus: "ok", HeaderSegment: "0123456789abcdef",
				HeaderSite: "US", HeaderCurrency: "EUR"},
			check: func(t *testing.T, v *View) {
				if v.ID != testID || v.Kind != wire.KindCustomer || !v.LoggedIn() || v.Version != 9 || v.Generation != 2 || v.Status != StatusOK || v.Segment != "0123456789abcdef" {
					t.Errorf("view %+v", v)
				}
				if v.Text(wire.FieldCurrency) != "USD" {
					t.Errorf("currency %q: the context must win over the field header", v.Text(wire.FieldCurrency))
				}
				if v.Text(wire.FieldSiteCode) != "US" {
					t.Errorf("site %q: the field header fills in an unset field", v.Text(wire.FieldSiteCode))
				}
				if v.CustomerID() != "c-1" {
					t.Errorf("customer %q", v.CustomerID())
				}
				if a, ok := v.Attr(wire.NamespaceCustom, "theme"); !ok || a.Text != "dark" {
					t.Errorf("custom %+v", v.Attrs)
				}
				if len(v.Attrs[wire.NamespacePrivacy]) != 0 {
					t.Errorf("privacy was not forwarded but shows %+v", v.Attrs[wire.NamespacePrivacy])
				}
			},
		},
		{
			name: "degraded: headers only",
			headers: map[string]string{HeaderID: testID, HeaderKind: "anonymous", HeaderContextStatus: "degraded",
				HeaderCurrency: "EUR", HeaderCart: "cart-7", HeaderTracking: "false"},
			check: func(t *testing.T, v *View) {
				if v.Status != StatusDegraded || v.Kind != wire.KindAnonymous || v.LoggedIn() {
					t.Errorf("view %+v", v)
				}
				if v.Text(wire.FieldCurrency) != "EUR" || v.Text(wire.FieldCartID) != "cart-7" {
					t.Errorf("fields %+v", v.Fields)
				}
				if tr := v.Fields[wire.FieldTrackingAllowed]; tr.Type != wire.TypeBool || tr.BoolValue() {
					t.Errorf("tracking %+v", tr)
				}
			},
		},
		{
			name:    "metadata from the context when headers are absent",
			headers: map[string]string{HeaderID: testID, HeaderKind: "customer", HeaderContext: contextHeader(s, 0)},
			check: func(t *testing.T, v *View) {
				if v.Version != 9 || v.Generation != 2 || v.Segment != edgeSegment {
					t.Errorf("view %+v", v)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			v, err := ParseView(h.Get)
			if errorCase(t, err, tt.wantErr) {
				return
			}
			tt.check(t, v)
		})
	}
}

func TestParseViewPercentDecodes(t *testing.T) {
	for _, tt := range []struct {
		header, want string
		bad          bool
	}{
		{header: "plain", want: "plain"},
		{header: "m%C3%BCller", want: "müller"},
		{header: "a%20b%25c", want: "a b%c"},
		{header: "%e2%82%ac", want: "€"},
		{header: "trail%", bad: true},
		{header: "trail%4", bad: true},
		{header: "bad%zz", bad: true},
		{header: "%FF", bad: true}, // not UTF-8
	} {
		h := http.Header{}
		h.Set(HeaderID, testID)
		h.Set(HeaderCustomer, tt.header)
		v, err := ParseView(h.Get)
		if tt.bad {
			if !errors.Is(err, ErrBadHeaders) {
				t.Errorf("%q: err = %v, want ErrBadHeaders", tt.header, err)
			}
			continue
		}
		if err != nil || v.CustomerID() != tt.want {
			t.Errorf("%q: customer %q, err %v; want %q", tt.header, v.CustomerID(), err, tt.want)
		}
	}
}

// signed is a request as the edge forwards it: its headers, authority and
// path.
type signed struct {
	h               http.Header
	authority, path string
}

func assertionKeys(t *testing.T, active uint8, ids ...uint8) *wire.AssertionKeys {
	t.Helper()
	secrets := map[uint8][]byte{}
	for _, id := range ids {
		secrets[id] = []byte(strings.Repeat(string(rune('a'+id)), 32))
	}
	ak, err := wire.NewAssertionKeys(active, secrets)
	if err != nil {
		t.Fatal(err)
	}
	return ak
}

// sign forwards s for GET authority+path as the edge would, at time at.
func sign(keys *wire.AssertionKeys, s *wire.Session, status wire.AssertStatus, authority, path string, at time.Time, withContext bool) signed {
	h := http.Header{}
	a := wire.Assertion{Kind: s.Kind, Status: status, ID: s.ID, Generation: s.Generation, IssuedAt: at.UnixMilli()}
	if status == wire.AssertOK {
		a.Version = s.Version
	}
	if withContext {
		ctx := contextHeader(s, wire.AllNamespaces)
		h.Set(HeaderContext, ctx)
		a.ContextDigest = keys.ContextDigest([]byte(ctx))
	}
	h.Set(HeaderAssertion, string(keys.AppendAssertion(nil, &a, []byte(authority), []byte(path))))
	h.Set(HeaderContextStatus, status.String())
	return signed{h: h, authority: authority, path: path}
}

func TestVerifier(t *testing.T) {
	now := time.Now()
	keys := assertionKeys(t, 1, 1)
	id, _ := wire.ParseID(testID)
	s := &wire.Session{ID: id, Kind: wire.KindCustomer, Generation: 2, Version: 9}
	s.Fields[wire.FieldCurrency] = wire.Text("USD")
	s.Fields[wire.FieldSiteCode] = wire.Text("US")
	s.Fields[wire.FieldCustomerID] = wire.Text("c-1")
	s.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("theme", wire.Text("dark"))
	other := s.Clone()
	other.ID[0]++

	ok := sign(keys, s, wire.AssertOK, "shop.example", "/cart?x=1", now, true)
	tests := []struct {
		name    string
		req     signed
		vf      Verifier
		edit    func(r *signed)
		wantErr []error
		check   func(t *testing.T, v *View)
	}{
		{name: "verified: the view comes from the assertion and the context", req: ok, check: func(t *testing.T, v *View) {
			if v.ID != testID || v.Kind != wire.KindCustomer || v.Generation != 2 || v.Version != 9 || v.Status != StatusOK {
				t.Errorf("view %+v", v)
			}
			if v.CustomerID() != "c-1" || v.Text(wire.FieldCurrency) != "USD" {
				t.Errorf("fields %+v", v.Fields)
			}
			if a, _ := v.Attr(wire.NamespaceCustom, "theme"); a.Text != "dark" {
				t.Errorf("custom %+v", v.Attrs)
			}
			if v.Segment != edgeSegment {
				t.Errorf("segment %q, want the edge's %q", v.Segment, edgeSegment)
			}
		}},
		{name: "per-field headers are not trusted", req: ok, edit: func(r *signed) {
			r.h.Set(HeaderCustomer, "mallory")
			r.h.Set(HeaderCurrency, "XXX")
			r.h.Set(HeaderID, "AAAAAAAAAAAAAAAAAAAAAA")
			r.h.Set(HeaderKind, "shared")
			r.h.Set(HeaderVersion, "1000")
			r.h.Set(HeaderSegment, "forged")
			r.h.Set(HeaderContextStatus, "degraded")
		}, check: func(t *testing.T, v *View) {
			if v.ID != testID || v.CustomerID() != "c-1" || v.Text(wire.FieldCurrency) != "USD" || v.Kind != wire.KindCustomer ||
				v.Version != 9 || v.Status != StatusOK || v.Segment == "forged" {
				t.Errorf("a per-field header won: %+v", v)
			}
		}},
		{name: "no assertion", req: signed{h: http.Header{}, authority: "shop.example", path: "/"}, wantErr: []error{ErrNoSession}},
		{name: "forged headers without an assertion", req: signed{h: http.Header{HeaderID: {testID}, HeaderKind: {"customer"}, HeaderCustomer: {"alice"}}},
			wantErr: []error{ErrNoSession}},
		{name: "garbage", req: ok, edit: func(r *signed) { r.h.Set(HeaderAssertion, "x") }, wantErr: []error{ErrNotFromEdge, wire.ErrAssertionMalformed}},
		{name: "another key", req: sign(assertionKeys(t, 2, 2), s, wire.AssertOK, "shop.example", "/cart?x=1", now, true),
			wantErr: []error{ErrNotFromEdge, wire.ErrAssertionUnknownKey}},
		{name: "another secret, same key id", req: sign(assertionKeys(t, 1, 1, 2), s, wire.AssertOK, "shop.example", "/cart?x=1", now, true),
			vf: Verifier{Keys: assertionKeys(t, 2, 2, 1)}, check: func(t *testing.T, v *View) {}},
		{name: "other path", req: ok, edit: func(r *signed) { r.path = "/cart?x=2" }, wantErr: []error{ErrNotFromEdge, wire.ErrAssertionBadSignature}},
		{name: "other authority", req: ok, edit: func(r *signed) { r.authority = "evil.example" }, wantErr: []error{ErrNotFromEdge, wire.ErrAssertionBadSignature}},
		{name: "stale", req: sign(keys, s, wire.AssertOK, "shop.example", "/cart?x=1", now.Add(-31*time.Second), true),
			wantErr: []error{ErrNotFromEdge, wire.ErrAssertionStale}},
		{name: "from the future", req: sign(keys, s, wire.AssertOK, "shop.example", "/cart?x=1", now.Add(31*time.Second), true),
			wantErr: []error{ErrNotFromEdge, wire.ErrAssertionStale}},
		{name: "within a wider skew", req: sign(keys, s, wire.AssertOK, "shop.example", "/cart?x=1", now.Add(-time.Minute), true),
			vf: Verifier{Keys: keys, MaxSkew: 2 * time.Minute}, check: func(t *testing.T, v *View) {}},
		{name: "another session's context", req: ok, edit: func(r *signed) {
			r.h.Set(HeaderContext, contextHeader(other, wire.AllNamespaces))
		}, wantErr: []error{ErrNotFromEdge, wire.ErrAssertionContext}},
		{name: "context removed", req: ok, edit: func(r *signed) { r.h.Del(HeaderContext) }, wantErr: []error{ErrNotFromEdge, wire.ErrAssertionContext}},
		{name: "context added", req: sign(keys, s, wire.AssertDegraded, "shop.example", "/cart?x=1", now, false), edit: func(r *signed) {
			r.h.Set(HeaderContext, contextHeader(s, wire.AllNamespaces))
		}, wantErr: []error{ErrNotFromEdge, wire.ErrAssertionContext}},
		{name: "degraded: id, kind and generation only", req: sign(keys, s, wire.AssertDegraded, "shop.example", "/cart?x=1", now, false),
			check: func(t *testing.T, v *View) {
				if v.ID != testID || v.Kind != wire.KindCustomer || v.Generation != 2 || v.Version != 0 || v.Status != StatusDegraded || v.CustomerID() != "" || v.Segment != "" {
					t.Errorf("view %+v", v)
				}
			}},
		{name: "new", req: sign(keys, &wire.Session{ID: id, Kind: wire.KindAnonymous, Generation: 1}, wire.AssertNew, "shop.example", "/", now, true),
			check: func(t *testing.T, v *View) {
				if v.Status != StatusNew || v.Version != 0 || v.LoggedIn() {
					t.Errorf("view %+v", v)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signed{h: tt.req.h.Clone(), authority: tt.req.authority, path: tt.req.path}
			if tt.edit != nil {
				tt.edit(&r)
			}
			vf := tt.vf
			if vf.Keys == nil {
				vf.Keys = keys
			}
			vf.Now = func() time.Time { return now }
			v, err := vf.Verify(r.authority, r.path, r.h.Get)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
			if len(tt.wantErr) > 0 {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, v)
		})
	}
}

// An edge that signed a context naming another session than its assertion
// is broken, not forged: the headers are malformed.
func TestVerifierContextOfAnotherID(t *testing.T) {
	keys := assertionKeys(t, 1, 1)
	id, _ := wire.ParseID(testID)
	s := &wire.Session{ID: id, Kind: wire.KindAnonymous, Generation: 1, Version: 1}
	other := s.Clone()
	other.ID[0]++
	ctx := contextHeader(other, wire.AllNamespaces)
	a := wire.Assertion{Kind: s.Kind, Status: wire.AssertOK, ID: s.ID, Generation: 1, Version: 1, IssuedAt: time.Now().UnixMilli(),
		ContextDigest: keys.ContextDigest([]byte(ctx))}
	h := http.Header{}
	h.Set(HeaderContext, ctx)
	h.Set(HeaderAssertion, string(keys.AppendAssertion(nil, &a, []byte("h"), []byte("/"))))
	if _, err := (&Verifier{Keys: keys}).Verify("h", "/", h.Get); !errors.Is(err, ErrBadHeaders) {
		t.Fatalf("err = %v, want ErrBadHeaders", err)
	}
}

func TestParseAssertionKeys(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	for _, tt := range []struct {
		doc string
		ok  bool
	}{
		{`{"keys": {"1": "` + secret + `"}, "activeKey": 1}`, true},
		{`{"keys": {"7": "` + secret + `"}}`, true}, // one key: it is the active one
		{`{"keys": {"1": "` + secret + `", "2": "` + secret + `"}, "activeKey": 2}`, true},
		{`{"keys": {"1": "` + secret + `", "2": "` + secret + `"}}`, false},
		{`{"keys": {"1": "` + secret + `"}, "activeKey": 2}`, false},
		{`{"keys": {"256": "` + secret + `"}, "activeKey": 1}`, false},
		{`{"keys": {"1": "c2hvcnQ="}, "activeKey": 1}`, false}, // short
		{`{"keys": {"1": "!!"}, "activeKey": 1}`, false},
		{`{"keys": {}, "activeKey": 1}`, false},
		{`{"keys": {"1": "` + secret + `"}, "activeKey": 1, "aktiveKey": 1}`, false},
		{`{"keys": {"1": "` + secret + `"}} {}`, false},
	} {
		_, err := ParseAssertionKeys([]byte(tt.doc))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.doc, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

func TestSecretFromEnv(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/key"
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("T_SECRET", "")
	t.Setenv("T_SECRET_FILE", "")
	if b, err := SecretFromEnv("T_SECRET"); b != nil || err != nil {
		t.Fatalf("unset: %q %v", b, err)
	}
	t.Setenv("T_SECRET", "from-env")
	if b, err := SecretFromEnv("T_SECRET"); string(b) != "from-env" || err != nil {
		t.Fatalf("env: %q %v", b, err)
	}
	t.Setenv("T_SECRET_FILE", file)
	if _, err := SecretFromEnv("T_SECRET"); err == nil {
		t.Fatal("both set: no error")
	}
	t.Setenv("T_SECRET", "")
	if b, err := SecretFromEnv("T_SECRET"); string(b) != "from-file" || err != nil {
		t.Fatalf("file: %q %v", b, err)
	}
	t.Setenv("T_SECRET_FILE", dir+"/missing")
	if _, err := SecretFromEnv("T_SECRET"); err == nil {
		t.Fatal("missing file: no error")
	}
}

// errorCase checks the error of a table case: with want set, err must be
// want (errors.Is) and the case is done (true); without, err must be nil.
func errorCase(t *testing.T, err, want error) bool {
	t.Helper()
	if want != nil {
		if !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}
