// Package compare is the headline comparison of docs/benchmarks.md: one app
// handler served three ways, on one machine, in one run.
//
//   - "edge": the app reads the session the edge proxy forwards (the SDK's
//     net/http middleware verifies the edge's signed assertion) behind the
//     real edge proxy running the real filter, with the real origin behind
//     it for cache misses.
//   - "cookie+redis": the same handler behind nothing; every request
//     decodes an HMAC-signed cookie (gorilla/securecookie) holding the
//     session id and GETs the session's JSON blob from redis-server, the
//     gorilla/sessions-with-a-Redis-store pattern.
//   - "ext_authz": an edge that asks the origin on every request (Authz): it
//     verifies the session cookie, GETs the session from the origin over a
//     pooled loopback connection and forwards it, signed, to the same app as
//     the edge would.
//
// Load drives any of them with the same keep-alive load generator and
// checks every answer against the page the session should produce, so the
// comparison cannot measure error pages. The benchmark and the test that
// wire the processes together are in compare_test.go
// (scripts/bench-compare.sh runs the benchmark).
package compare

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"strings"

	"github.com/gorilla/securecookie"
	"github.com/redis/rueidis"

	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Page is what the app's handler shows of a session.
type Page struct {
	ID   string // session id
	Kind string // "anonymous" or "customer"
	Cart string // cart id
}

// catalogue pads the page to a small storefront page (about 1 KiB).
var catalogue = func() string {
	var b strings.Builder
	b.WriteString("<ul>")
	for _, p := range []string{"mug", "shirt", "poster", "socks", "cap", "bag", "pen", "sticker", "scarf", "notebook"} {
		b.WriteString(`<li><a href="/products/` + p + `">` + p + `</a> <button name="sku" value="` + p + `">add</button></li>`)
	}
	b.WriteString("</ul>")
	return b.String()
}()

// Render appends the app's page for p: the same bytes whatever served the
// session.
func Render(dst []byte, p Page) []byte {
	dst = append(dst, "<!doctype html><html><head><title>shop</title></head><body><p>session "...)
	dst = append(dst, html.EscapeString(p.ID)...)
	dst = append(dst, " kind "...)
	dst = append(dst, html.EscapeString(p.Kind)...)
	dst = append(dst, "</p><p>cart "...)
	dst = append(dst, html.EscapeString(p.Cart)...)
	dst = append(dst, "</p>"...)
	dst = append(dst, catalogue...)
	return append(dst, "</body></html>\n"...)
}

func writePage(w http.ResponseWriter, p Page) {
	body := Render(make([]byte, 0, 1536), p)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(body)
}

// EdgeApp is the app behind the edge or Authz: the SDK middleware checks
// the forwarded assertion with keys and the handler renders the View.
func EdgeApp(keys *wire.AssertionKeys) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := sessionhttp.FromRequest(r)
		writePage(w, Page{ID: v.ID, Kind: v.Kind.String(), Cart: v.Text(wire.FieldCartID)})
	})
	return sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(h)
}

// CookieName is the cookie of the cookie+redis app (gorilla/sessions'
// usual name), and RedisPrefix the prefix of its Redis keys (that of the
// common Redis stores for gorilla/sessions).
const (
	CookieName  = "session"
	RedisPrefix = "session_"
)

// Blob is the session as the cookie+redis app stores it in Redis (JSON),
// with the fields the edge forwards.
type Blob struct {
	Kind, CustomerID, CartID         string
	Site, Currency, Locale, Location string
}

// CookieApp is the app of the cookie+redis mode.
type CookieApp struct {
	Codec *securecookie.SecureCookie // HMAC-signed session id
	Redis rueidis.Client
}

// NewCodec returns the cookie codec: HMAC-SHA256 with hashKey, no
// encryption (gorilla/sessions' CookieStore with one key).
func NewCodec(hashKey []byte) *securecookie.SecureCookie {
	return securecookie.New(hashKey, nil)
}

// Store writes b for session id to Redis and returns the cookie value that
// names it.
func (a *CookieApp) Store(ctx context.Context, id string, b Blob) (string, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return "", err
	}
	if err := a.Redis.Do(ctx, a.Redis.B().Set().Key(RedisPrefix+id).Value(rueidis.BinaryString(data)).Build()).Error(); err != nil {
		return "", err
	}
	return a.Codec.Encode(CookieName, id)
}

func (a *CookieApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		http.Error(w, "no session", http.StatusUnauthorized)
		return
	}
	var id string
	if err := a.Codec.Decode(CookieName, c.Value, &id); err != nil {
		http.Error(w, "bad session cookie", http.StatusUnauthorized)
		return
	}
	data, err := a.Redis.Do(r.Context(), a.Redis.B().Get().Key(RedisPrefix+id).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		http.Error(w, "session ended", http.StatusUnauthorized)
		return
	}
	if err != nil {
		http.Error(w, "session store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	var b Blob
	if err := json.Unmarshal(data, &b); err != nil {
		http.Error(w, "bad session", http.StatusInternalServerError)
		return
	}
	writePage(w, Page{ID: id, Kind: b.Kind, Cart: b.CartID})
}
