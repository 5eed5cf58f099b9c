// Package webclient plays a browser over plain HTTP for the end-to-end
// tests of the examples and of the Caddy handler: cookies, redirects, and
// a record of the session headers that must never reach a client.
package webclient

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Browser is a minimal browser for tests: it keeps cookies by name (for one
// site, whatever their Secure attribute, since tests run over loopback HTTP
// as browsers do for localhost), follows redirects, and records the
// Set-Cookie headers it saw.
type Browser struct {
	Base string // e.g. "http://127.0.0.1:8080"

	mu      sync.Mutex
	cookies map[string]*http.Cookie
	last    []*http.Cookie // set by the last request's responses, redirects included
	// SetCookies holds every Set-Cookie header received, in order.
	SetCookies []string
	// Leaked holds every x-session-* response header that reached the
	// browser ("name: value"); the edge must strip them all.
	Leaked []string
	// Header is sent with every request (to play a client that forges
	// session headers, for one).
	Header http.Header
	client *http.Client
}

// New returns a browser for the site at base.
func New(base string) *Browser {
	return &Browser{Base: strings.TrimRight(base, "/"), cookies: map[string]*http.Cookie{}, Header: http.Header{},
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Cookie returns the value of cookie name ("" when unset).
func (b *Browser) Cookie(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.cookies[name]; c != nil {
		return c.Value
	}
	return ""
}

// HTTPCookie returns cookie name as the site set it, attributes included
// (nil when unset).
func (b *Browser) HTTPCookie(name string) *http.Cookie {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cookies[name]
}

// Reissued reports whether the responses to the last request (redirects
// included) set cookie name.
func (b *Browser) Reissued(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.last {
		if c.Name == name {
			return true
		}
	}
	return false
}

// SetCookie sets a cookie as if the site had set it (to replay old tokens).
func (b *Browser) SetCookie(name, value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cookies[name] = &http.Cookie{Name: name, Value: value}
}

// Page is an answer after redirects.
type Page struct {
	Status int
	Header http.Header
	Body   string
	URL    string
}

// Get loads path, with header (name, value pairs) on top of Header.
func (b *Browser) Get(t testing.TB, path string, header ...string) *Page {
	t.Helper()
	return b.Do(t, http.MethodGet, path, "", nil, header...)
}

// Post submits a form to path.
func (b *Browser) Post(t testing.TB, path string, form url.Values) *Page {
	t.Helper()
	return b.Do(t, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(form.Encode()))
}

// PostJSON posts v as JSON to path, as a page's script would.
func (b *Browser) PostJSON(t testing.TB, path string, v any) *Page {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b.Do(t, http.MethodPost, path, "application/json", body)
}

// Send sends a request with method to path, with v as its JSON body (none
// when v is nil), as a page's script does with fetch.
func (b *Browser) Send(t testing.TB, method, path string, v any) *Page {
	t.Helper()
	if v == nil {
		return b.Do(t, method, path, "", nil)
	}
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b.Do(t, method, path, "application/json", body)
}

// GetJSON loads path and decodes its JSON answer into out, failing the test
// unless the status is want.
func (b *Browser) GetJSON(t testing.TB, path string, want int, out any) *Page {
	t.Helper()
	p := b.Get(t, path)
	if p.Status != want {
		t.Fatalf("GET %s: %d %s, want %d", path, p.Status, p.Body, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(p.Body), out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return p
}

// Do sends a request with method to path, with payload (none if nil) as
// its body of contentType, and header (name, value pairs) on top of Header;
// it follows redirects.
func (b *Browser) Do(t testing.TB, method, path, contentType string, payload []byte, header ...string) *Page {
	t.Helper()
	b.mu.Lock()
	b.last = nil
	b.mu.Unlock()
	for range 10 {
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequest(method, b.Base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range b.Header {
			req.Header[k] = vs
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		b.mu.Lock()
		for _, c := range b.cookies {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		b.mu.Unlock()
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.mu.Lock()
		b.SetCookies = append(b.SetCookies, resp.Header.Values("Set-Cookie")...)
		for name, vs := range resp.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-session-") {
				b.Leaked = append(b.Leaked, name+": "+strings.Join(vs, ", "))
			}
		}
		for _, c := range resp.Cookies() {
			b.last = append(b.last, c)
			if c.MaxAge < 0 {
				delete(b.cookies, c.Name)
			} else {
				b.cookies[c.Name] = c
			}
		}
		b.mu.Unlock()
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatalf("redirect to %q: %v", loc, err)
			}
			method, path, contentType, payload = http.MethodGet, u.RequestURI(), "", nil
			continue
		}
		return &Page{Status: resp.StatusCode, Header: resp.Header, Body: string(data), URL: path}
	}
	t.Fatalf("%s %s: too many redirects", method, path)
	return nil
}
