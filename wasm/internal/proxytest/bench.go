//go:build !wasip1

package proxytest

import (
	"testing"

	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// Replay is one request replayed through a guest: create, request headers,
// response headers, done, log, delete, on a stream whose header maps stay
// fixed (the mock discards header writes).
type Replay struct {
	E      *Env
	Tokens []string // when set, request i uses Tokens[i%len]: first sight of each
	st     *abi.MockStream
	cookie int
	id     uint32
}

// NewReplay configures a guest, mints a session, fetches nothing (the
// session is cached from minting) and prepares the replayed stream.
func NewReplay(tb testing.TB, ng NewGuest) *Replay { return NewReplayWith(tb, ng, "") }

// NewReplayWith is NewReplay with extra configuration members (see Config).
func NewReplayWith(tb testing.TB, ng NewGuest, extra string) *Replay {
	e := NewEnv(tb, ng, NewOrigin(Start))
	e.MustConfigure(Config(extra))
	s := e.Request("GET", "/", nil)
	tok := CookieToken(SetCookies(s.Respond())[0])
	s.Finish()
	// The token comes back once: the session is established (promoted in
	// the cache, reported in the next touch), as for any returning client.
	s = e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
	s.Respond()
	s.Finish()
	r := &Replay{E: e, id: 1 << 30}
	r.st = e.M.Stream(r.id)
	r.st.Request = []abi.Pair{{Key: ":method", Value: "GET"}, {Key: ":path", Value: "/products/42?color=red"},
		{Key: ":authority", Value: "shop.example.com"}, {Key: ":scheme", Value: "https"},
		{Key: "user-agent", Value: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
		{Key: "accept", Value: "text/html,application/xhtml+xml"}, {Key: "accept-language", Value: "de-DE,de;q=0.9"},
		{Key: "cookie", Value: "_ga=GA1.2.3; __Host-sid=" + tok + "; theme=dark"}}
	r.cookie = len(r.st.Request) - 1
	r.st.Response = []abi.Pair{{Key: ":status", Value: "200"}, {Key: "content-type", Value: "text/html"},
		{Key: "cache-control", Value: "private"}}
	e.M.Discard = true
	return r
}

// SetPath replaces the replayed request's :path.
func (r *Replay) SetPath(path string) {
	for i := range r.st.Request {
		if r.st.Request[i].Key == ":path" {
			r.st.Request[i].Value = path
		}
	}
}

// FreshTokens makes n distinct valid tokens of the replayed session (they
// differ in issued-at), so each request verifies an HMAC but finds the
// context cached.
func (r *Replay) FreshTokens(tb testing.TB, n int) {
	v, _ := SessionCookie(abi.Get(r.st.Request, "cookie"))
	c := Claims(tb, v, r.E.Now())
	r.Tokens = make([]string, n)
	for i := range r.Tokens {
		c.IssuedAt = r.E.Now().Unix() - int64(i%1000) - 1
		c.IdleDeadline = r.E.Now().Unix() + 3000 + int64(i/1000)
		r.Tokens[i] = "__Host-sid=" + string(Keyring.AppendToken(nil, &c))
	}
}

// SessionCookie finds the __Host-sid value in a cookie header.
func SessionCookie(h string) (string, bool) {
	for _, part := range splitCookie(h) {
		if v, ok := cutPrefix(part, "__Host-sid="); ok {
			return v, true
		}
	}
	return "", false
}

// Do replays request i and returns the request headers action.
func (r *Replay) Do(i int) uint32 {
	e := r.E
	if r.Tokens != nil {
		r.st.Request[r.cookie].Value = r.Tokens[i%len(r.Tokens)]
	}
	e.M.Effective = e.Root
	e.G.ContextCreate(r.id, e.Root)
	e.M.Effective = r.id
	a := e.G.RequestHeaders(r.id, uint32(len(r.st.Request)), true)
	e.G.ResponseHeaders(r.id, uint32(len(r.st.Response)), true)
	e.G.Done(r.id)
	e.G.Log(r.id)
	e.G.Delete(r.id)
	return a
}
