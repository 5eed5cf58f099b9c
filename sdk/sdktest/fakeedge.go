package sdktest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// FakeEdgeConfig configures a FakeEdge.
type FakeEdgeConfig struct {
	// Origin is the fake origin whose sessions the edge forwards. Required.
	Origin *FakeOrigin
	// Upstream is the app's base URL. Required.
	Upstream string
	// Defaults are the site defaults of new sessions (well-known fields by
	// JSON name, e.g. "currency": "EUR").
	Defaults map[wire.Field]string
	// Cookie is the cookie name. Default "__Host-sid".
	Cookie string
}

// FakeEdge plays the edge in front of an app in tests, in the way the real
// filter does it: it strips client-sent x-session-* headers, verifies the
// session cookie, mints anonymous sessions without telling the origin, forwards
// the session as x-session-* headers, and turns an x-session-token response
// header into the cookie. Like a real edge it serves sessions from a cache
// that only Sync refreshes, so apps must read their own writes back (see the
// sdk package docs).
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
	up, err := url.Parse(cfg.Upstream)
	if err != nil {
		panic("sdktest: bad upstream URL: " + err.Error())
	}
	e := &FakeEdge{cfg: cfg, cache: map[wire.ID]*wire.Session{}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = pr.In.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			if tok := resp.Header.Get("x-session-token"); tok != "" {
				resp.Header.Add("Set-Cookie", e.cookie(tok))
			}
			for name := range resp.Header {
				if strings.HasPrefix(strings.ToLower(name), "x-session-") {
					resp.Header.Del(name)
				}
			}
			return nil
		},
	}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-session-") {
				r.Header.Del(name)
			}
		}
		e.forward(w, r)
		proxy.ServeHTTP(w, r)
	}))
	return e
}

func (e *FakeEdge) cookie(token string) string {
	return (&http.Cookie{Name: e.cfg.Cookie, Value: token, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}).String()
}

// Sync drops the edge's cached sessions, as if the change feed had delivered
// every change.
func (e *FakeEdge) Sync() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.cache)
}

// forward sets the session headers on r and, for a new session, the cookie on w.
func (e *FakeEdge) forward(w http.ResponseWriter, r *http.Request) {
	kr := e.cfg.Origin.Keyring()
	var c wire.Claims
	valid := false
	if ck, err := r.Cookie(e.cfg.Cookie); err == nil {
		valid = kr.VerifyToken([]byte(ck.Value), time.Now().Unix(), &c) == nil
	}
	e.mu.Lock()
	s, cached := e.cache[c.ID]
	if valid && !cached {
		if s = e.cfg.Origin.Session(c.ID.String()); s != nil {
			e.cache[c.ID] = s
		}
	}
	e.mu.Unlock()
	if valid && s != nil && (s.Ended != 0 || c.Generation < s.Generation) {
		valid = false // ended, or a token from before a login or logout
	}
	status := "ok"
	if !valid {
		id, _ := wire.NewID()
		now := time.Now()
		c = wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now.Unix(),
			IdleDeadline: now.Add(time.Hour).Unix(), HardDeadline: now.Add(24 * time.Hour).Unix()}
		w.Header().Add("Set-Cookie", e.cookie(string(kr.AppendToken(nil, &c))))
		s, status = nil, "new"
	}
	view := &wire.Session{ID: c.ID, Kind: c.Kind, Generation: c.Generation}
	if s != nil {
		view = s.Clone()
		if c.Generation > view.Generation {
			// The cookie is newer than the cache (a login the feed has
			// not delivered yet): trust the verified token's metadata.
			view.Kind, view.Generation = c.Kind, c.Generation
		}
	} else if valid {
		status = "new" // a token the origin has not stored anything for yet
	}
	for f, v := range e.cfg.Defaults {
		if view.Fields[f].IsZero() {
			view.Fields[f] = wire.Text(v)
		}
	}
	h := r.Header
	h.Set("x-session-id", view.ID.String())
	h.Set("x-session-kind", view.Kind.String())
	h.Set("x-session-generation", strconv.FormatUint(uint64(view.Generation), 10))
	h.Set("x-session-version", strconv.FormatUint(view.Version, 10))
	h.Set("x-session-context-status", status)
	h.Set("x-session-context", base64.RawURLEncoding.EncodeToString(wire.AppendSessionView(nil, view, wire.AllNamespaces)))
	for _, fh := range [...]struct {
		name string
		f    wire.Field
	}{{"x-session-site", wire.FieldSiteCode}, {"x-session-currency", wire.FieldCurrency}, {"x-session-location", wire.FieldTargetLocation},
		{"x-session-locale", wire.FieldLocale}, {"x-session-cart", wire.FieldCartID}, {"x-session-customer", wire.FieldCustomerID}} {
		if t := view.Fields[fh.f].Text; t != "" {
			h.Set(fh.name, t)
		}
	}
	seg := sha256.Sum256([]byte(view.Fields[wire.FieldSiteCode].Text + "\x00" + view.Fields[wire.FieldCurrency].Text + "\x00" +
		view.Fields[wire.FieldLocale].Text + "\x00" + view.Fields[wire.FieldTargetLocation].Text))
	h.Set("x-session-segment", hex.EncodeToString(seg[:8]))
}
