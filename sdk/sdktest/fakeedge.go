package sdktest

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// FakeEdgeConfig configures a FakeEdge.
type FakeEdgeConfig struct {
	// Origin is the fake origin whose sessions the edge forwards. Required.
	Origin *FakeOrigin
	// Upstream is the app's base URL. Required.
	Upstream string
	// Defaults are the site defaults of every session (well-known fields,
	// e.g. wire.FieldCurrency: "EUR"), where the session has no value.
	Defaults map[wire.Field]string
	// Cookie is the cookie name. Default "__Host-sid".
	Cookie string
	// AssertionKeys sign the assertion on every forwarded request. Default:
	// a random key; FakeEdge.AssertionKeys returns it for the app's
	// middleware.
	AssertionKeys *wire.AssertionKeys
	// Compact forwards only x-session-context, x-session-context-status and
	// the assertion, as the filter's forward mode "compact" does; by default
	// the per-field headers are sent too.
	Compact bool
	// SelfServicePrefix is the path prefix of the self-service endpoints
	// the edge answers itself. Default "/.session/".
	SelfServicePrefix string
	// SelfServiceFields are the well-known fields a shopper may set with
	// PATCH {prefix}context, besides the public namespace. Default:
	// siteCode, currency, targetLocation and trackingAllowed.
	SelfServiceFields []wire.Field
	// Allowed lists, per text field a shopper may set, the values the
	// site allows (the filter's site lists siteCodes, currencies and
	// targetLocations). A field without a list allows only its value in
	// Defaults.
	Allowed map[wire.Field][]string
}

// FakeEdge plays the edge in front of an app in tests, in the way the real
// filter does it: it strips client-sent x-session-* headers (also spelled
// with underscores), verifies the session cookie, mints anonymous sessions
// without telling the origin, forwards the session in x-session-* headers
// signed with an assertion, turns an x-session-token response header into
// the cookie and strips every x-session-* response header.
//
// It answers the shopper's self-service endpoints under SelfServicePrefix
// as the filter does, against the fake origin: GET and PATCH context (the
// public namespace and the SelfServiceFields, checked against Allowed),
// DELETE context/public/KEY, GET sessions (the customer's devices) and
// DELETE sessions/others ("log out my other devices"); writes from another
// site (Sec-Fetch-Site, Origin) are refused with 403. And after each
// request with a session the origin knows it reports the client's device,
// as the filter's activity reports do; a session the origin does not know
// yet is created then, with the site defaults, as a minted session is when
// its token comes back.
//
// Like a real edge it serves sessions from a cache: the cache entry of a
// session is dropped when the app's response carries x-session-written (the
// middlewares set it for writes made through a Client with the request's
// context), so the next request reads the fake origin, and Sync drops every
// entry, as if the change feed had delivered every change.
type FakeEdge struct {
	*httptest.Server
	cfg FakeEdgeConfig

	mu    sync.Mutex
	cache map[wire.ID]*wire.Session
}

// NewFakeEdge starts a FakeEdge. Close it when done.
func NewFakeEdge(cfg FakeEdgeConfig) *FakeEdge {
	if cfg.Cookie == "" {
		cfg.Cookie = "__Host-sid"
	}
	if cfg.AssertionKeys == nil {
		cfg.AssertionKeys = NewAssertionKeys()
	}
	up, err := url.Parse(cfg.Upstream)
	if err != nil {
		panic("sdktest: bad upstream URL: " + err.Error())
	}
	e := &FakeEdge{cfg: cfg, cache: map[wire.ID]*wire.Session{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = pr.In.Host
			f := pr.In.Context().Value(forwardKey{}).(*forwarded)
			forward(pr.Out.Header, cfg.AssertionKeys, pr.Out.Host, pr.Out.URL.RequestURI(), f.view, f.status, cfg.Compact)
		},
		ModifyResponse: func(resp *http.Response) error {
			if tok := resp.Header.Get("x-session-token"); tok != "" {
				resp.Header.Add("Set-Cookie", e.cookie(tok))
			}
			if resp.Header.Get("x-session-written") != "" {
				f := resp.Request.Context().Value(forwardKey{}).(*forwarded)
				e.mu.Lock()
				delete(e.cache, f.view.ID)
				e.mu.Unlock()
			}
			stripSessionHeaders(resp.Header)
			return nil
		},
	}
	if cfg.SelfServicePrefix == "" {
		cfg.SelfServicePrefix = "/.session/"
	}
	if cfg.SelfServiceFields == nil {
		cfg.SelfServiceFields = []wire.Field{wire.FieldSiteCode, wire.FieldCurrency, wire.FieldTargetLocation, wire.FieldTrackingAllowed}
	}
	e.cfg = cfg
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stripSessionHeaders(r.Header)
		if rest, ok := strings.CutPrefix(r.URL.Path, cfg.SelfServicePrefix); ok {
			e.selfService(w, r, rest)
			return
		}
		f := e.resolve(w, r)
		proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardKey{}, f)))
		if f.known {
			e.report(r, f)
		}
	}))
	return e
}

// AssertionKeys returns the keys the edge signs its assertions with, for
// the app's middleware configuration.
func (e *FakeEdge) AssertionKeys() *wire.AssertionKeys { return e.cfg.AssertionKeys }

// Sync drops the edge's cached sessions, as if the change feed had delivered
// every change.
func (e *FakeEdge) Sync() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.cache)
}

func (e *FakeEdge) cookie(token string) string {
	return (&http.Cookie{Name: e.cfg.Cookie, Value: token, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}).String()
}

type forwardKey struct{}

// forwarded is what the edge decided to forward for one request.
type forwarded struct {
	view   *wire.Session
	status wire.AssertStatus
	claims wire.Claims
	known  bool // the client presented a valid token: its activity is reported
}

// resolve finds the session of r (minting one, with its cookie on w, when
// r has no valid token) and returns what to forward.
func (e *FakeEdge) resolve(w http.ResponseWriter, r *http.Request) *forwarded {
	kr := e.cfg.Origin.Keyring()
	var c wire.Claims
	valid := false
	if ck, err := r.Cookie(e.cfg.Cookie); err == nil {
		valid = kr.VerifyToken([]byte(ck.Value), time.Now().Unix(), &c) == nil
	}
	var s *wire.Session
	if valid {
		e.mu.Lock()
		s = e.cache[c.ID]
		e.mu.Unlock()
		// The generation rule: a token newer than the copy fetches; an
		// older one is dead.
		if s == nil || c.Generation > s.Generation {
			if s = e.cfg.Origin.Session(c.ID.String()); s != nil {
				e.mu.Lock()
				e.cache[c.ID] = s
				e.mu.Unlock()
			}
		}
		if s != nil && (s.Ended != 0 || c.Generation != s.Generation) {
			valid, s = false, nil
		}
	}
	status := wire.AssertOK
	if !valid {
		id, _ := wire.NewID()
		now := time.Now()
		c = wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now.Unix(),
			IdleDeadline: now.Add(time.Hour).Unix(), HardDeadline: now.Add(24 * time.Hour).Unix()}
		w.Header().Add("Set-Cookie", e.cookie(string(kr.AppendToken(nil, &c))))
	}
	view := &wire.Session{ID: c.ID, Kind: c.Kind, Generation: c.Generation}
	if s != nil {
		view = s.Clone()
	} else {
		status = wire.AssertNew // minted here, or not stored at the origin yet
	}
	e.withDefaults(view)
	return &forwarded{view: view, status: status, claims: c, known: valid}
}

// withDefaults fills in the site defaults where s has no value.
func (e *FakeEdge) withDefaults(s *wire.Session) {
	for f, v := range e.cfg.Defaults {
		if s.Fields[f].IsZero() {
			s.Fields[f] = wire.Text(v)
		}
	}
}

// initOps are the ops an edge applies to a session it minted: the site
// defaults, and the client's device.
func (e *FakeEdge) initOps(r *http.Request) []wire.Op {
	var ops []wire.Op
	for f := wire.Field(0); f < wire.NumFields; f++ {
		if v, ok := e.cfg.Defaults[f]; ok {
			ops = append(ops, wire.Op{Code: wire.OpSetField, Field: f, Value: wire.Text(v)})
		}
	}
	if dev := e.device(r); !dev.IsZero() {
		ops = append(ops, wire.Op{Code: wire.OpDevice, Device: dev})
	}
	return ops
}

// report tells the origin the client was seen, as the filter's activity
// report does after the request: a session the origin does not know yet
// is created as the edge minted it.
func (e *FakeEdge) report(r *http.Request, f *forwarded) {
	e.cfg.Origin.seen(&f.claims, e.device(r), e.initOps(r))
}

// device is what the edge records of the client: its user agent (cut to
// 256 bytes), its address as a network prefix (/24 for IPv4, /48 for
// IPv6), and the site.
func (e *FakeEdge) device(r *http.Request) wire.Device {
	ua := r.UserAgent()
	if len(ua) > wire.MaxDeviceText {
		ua = ua[:wire.MaxDeviceText]
		for !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	dev := wire.Device{UserAgent: ua, Site: e.cfg.Defaults[wire.FieldSiteCode]}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		bits := 48
		if ap.Addr().Unmap().Is4() {
			bits = 24
		}
		if p, err := ap.Addr().Unmap().Prefix(bits); err == nil {
			dev.Addr = p.String()
		}
	}
	return dev
}

// NewAssertionKeys returns assertion keys with one random secret, id 1.
func NewAssertionKeys() *wire.AssertionKeys {
	secret := make([]byte, 32)
	id, _ := wire.NewID()
	copy(secret, id[:])
	id, _ = wire.NewID()
	copy(secret[16:], id[:])
	ak, err := wire.NewAssertionKeys(1, map[uint8][]byte{1: secret})
	if err != nil {
		panic(err)
	}
	return ak
}

// Forward sets on r the headers the edge forwards for session s with
// status, as they would reach the app: the per-field headers (values
// percent-encoded as the edge does), x-session-context with every namespace
// of s, x-session-context-status, and x-session-assertion signed with keys
// and bound to r's Host and request target. Use it to call an app's
// handlers directly in tests:
//
//	req := httptest.NewRequest("GET", "/cart", nil)
//	sdktest.Forward(req, keys, session, wire.AssertOK)
//	handler.ServeHTTP(rec, req)
func Forward(r *http.Request, keys *wire.AssertionKeys, s *wire.Session, status wire.AssertStatus) {
	authority := r.Host
	if authority == "" {
		authority = r.URL.Host
	}
	path := r.RequestURI
	if path == "" {
		path = r.URL.RequestURI()
	}
	stripSessionHeaders(r.Header)
	forward(r.Header, keys, authority, path, s, status, false)
}

func forward(h http.Header, keys *wire.AssertionKeys, authority, path string, view *wire.Session, status wire.AssertStatus, compact bool) {
	segment := wire.AppendSegment(nil, view)
	ctx := base64.RawURLEncoding.EncodeToString(wire.AppendForwardView(nil, view, wire.AllNamespaces, segment))
	a := wire.Assertion{Kind: view.Kind, Status: status, ID: view.ID, Generation: view.Generation,
		IssuedAt: time.Now().UnixMilli(), ContextDigest: keys.ContextDigest([]byte(ctx))}
	if status == wire.AssertOK {
		a.Version = view.Version
	}
	h.Set("x-session-context", ctx)
	h.Set("x-session-context-status", status.String())
	h.Set("x-session-assertion", string(keys.AppendAssertion(nil, &a, []byte(authority), []byte(path))))
	if compact {
		return
	}
	h.Set("x-session-id", view.ID.String())
	h.Set("x-session-kind", view.Kind.String())
	h.Set("x-session-generation", strconv.FormatUint(uint64(view.Generation), 10))
	h.Set("x-session-version", strconv.FormatUint(a.Version, 10))
	for _, fh := range [...]struct {
		name string
		f    wire.Field
	}{{"x-session-site", wire.FieldSiteCode}, {"x-session-currency", wire.FieldCurrency}, {"x-session-location", wire.FieldTargetLocation},
		{"x-session-locale", wire.FieldLocale}, {"x-session-cart", wire.FieldCartID}, {"x-session-customer", wire.FieldCustomerID}} {
		if t := view.Fields[fh.f].Text; t != "" {
			h.Set(fh.name, percentEncode(t))
		}
	}
	if tr := view.Fields[wire.FieldTrackingAllowed]; tr.Type == wire.TypeBool {
		h.Set("x-session-tracking", strconv.FormatBool(tr.BoolValue()))
	}
	h.Set("x-session-segment", string(segment))
}

// percentEncode writes every byte outside visible ASCII (0x21-0x7e), and
// '%' itself, as %HH: the edge's encoding of per-field header values.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// stripSessionHeaders removes every header whose name, lower-cased and with
// '_' read as '-', starts with "x-session-".
func stripSessionHeaders(h http.Header) {
	for name := range h {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "x-session-") {
			delete(h, name)
		}
	}
}
