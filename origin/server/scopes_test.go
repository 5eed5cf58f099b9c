package server

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// scopeColumns are the scopes in the order of docs/api.md's scope table.
var scopeColumns = []string{"sessions:read", "sessions:write", "sessions:admin", "edge:sync", "edge:selfservice"}

// docScopeTable reads the scope table of docs/api.md: route ("GET
// /v1/sessions/{id}") → one cell per scope column: "yes", "token" (an edge
// scope, with the session token) or "–".
func docScopeTable(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "| route | sessions:read |") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		if strings.HasPrefix(cells[0], "---") {
			continue
		}
		if len(cells) != 1+len(scopeColumns) {
			t.Fatalf("docs/api.md scope table row %q has %d cells", line, len(cells))
		}
		table[cells[0]] = cells[1:]
	}
	if len(table) == 0 {
		t.Fatal("docs/api.md has no scope table (a header starting \"| route | sessions:read |\")")
	}
	return table
}

// TestScopeTable checks every route against every scope: the route table's
// grants match docs/api.md's scope table, and over HTTP a key holding only
// that scope is let through (with the session's token where the table says
// "token") or refused with 403.
func TestScopeTable(t *testing.T) {
	cfg := baseConfig(t)
	for _, sc := range scopeColumns {
		cfg.APIKeys = append(cfg.APIKeys, APIKey{Name: "only " + sc, Key: "only-" + sc, Scopes: []string{sc}})
	}
	o := startOrigin(t, cfg)
	doc := docScopeTable(t)
	for _, r := range o.srv.routes {
		if len(r.grants) == 0 {
			continue // public: named in the text, not in the table
		}
		route := r.method + " " + r.pattern
		row, ok := doc[route]
		if !ok {
			t.Errorf("docs/api.md's scope table lacks %s", route)
			continue
		}
		delete(doc, route)
		for i, sc := range scopeColumns {
			want := "–"
			for _, g := range r.grants {
				if g != scopeNames[sc] {
					continue
				}
				want = "yes"
				if g.isEdgeScope() && strings.HasPrefix(r.pattern, "/v1/sessions/") {
					want = "token"
				}
			}
			if row[i] != want {
				t.Errorf("%s, %s: docs say %q, the route table %q", route, sc, row[i], want)
			}
		}
	}
	for route := range doc {
		t.Errorf("docs/api.md's scope table lists %s, which is no route", route)
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, r := range o.srv.routes {
		for _, sc := range scopeColumns {
			t.Run(r.method+" "+r.pattern+" "+sc, func(t *testing.T) {
				req := scopeRequest(t, o, r.pattern)
				hdr := []string{"Content-Type", req.ctype}
				if req.token != "" {
					hdr = append(hdr, "X-Session-Token", req.token)
				}
				var body any
				if req.body != nil {
					body = req.body
				}
				res := o.do(r.method, req.path, "only-"+sc, body, hdr...)
				allowed := false
				for _, g := range r.grants {
					allowed = allowed || g == scopeNames[sc]
				}
				switch {
				case len(r.grants) == 0:
					if res.status != 200 {
						t.Fatalf("public route: %d %s", res.status, res.body)
					}
				case allowed && (res.status == 401 || res.status == 403 || res.status >= 500):
					t.Fatalf("allowed, but answered %d %s", res.status, res.body)
				case !allowed && res.status != 403:
					t.Fatalf("not allowed, but answered %d %s", res.status, res.body)
				}
			})
		}
	}
}

type scopeReq struct {
	path, ctype, token string
	body               []byte
}

// scopeRequest builds a valid request for the route pattern on a fresh
// session: a customer session, with its token.
func scopeRequest(t *testing.T, o *testOrigin, pattern string) scopeReq {
	t.Helper()
	id := o.create(map[string]any{"public": map[string]any{"k": 1}})
	r := o.do("POST", "/v1/sessions/"+id+"/login", keyAll, map[string]any{"customerId": "scope-c"})
	tok, _ := r.json(t)["token"].(string)
	req := scopeReq{ctype: "application/json", token: tok}
	req.path = strings.NewReplacer("{id}", id, "{ns}", "public", "{key}", "k", "{name}", "scope-shared", "{cid}", "scope-c").Replace(pattern)
	switch {
	case pattern == "/v1/sync/touch":
		wid, _ := wire.ParseID(id)
		now := time.Now().UnixMilli()
		req.body = wire.AppendTouches(nil, []wire.Touch{{ID: wid, Kind: wire.KindCustomer, Generation: 2, LastSeen: now}})
		req.ctype = "application/cbor"
	case strings.HasSuffix(pattern, "/context"):
		req.body = []byte(`{"public":{"a":1}}`)
	case strings.HasSuffix(pattern, "/attributes"):
		req.body = []byte(`{"namespace":"public","key":"a","value":1}`)
	case strings.HasSuffix(pattern, "/login"):
		req.body = []byte(`{"customerId":"scope-c"}`)
	}
	return req
}
