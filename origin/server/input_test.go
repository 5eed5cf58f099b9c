package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// raw sends text as one request on a new connection and reads the answer;
// closed reports whether the server closed the connection after it.
func (o *testOrigin) raw(text string) (res *http.Response, body string, closed bool) {
	o.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(o.url, "http://"))
	if err != nil {
		o.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, text); err != nil {
		o.t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		o.t.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	return res, string(b), err == io.EOF
}

// TestEmptyBodies: a route that takes a body refuses an empty or missing
// one, naming "body", and changes nothing.
func TestEmptyBodies(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	id := o.create(map[string]any{"currency": "EUR"})
	for _, c := range []struct{ method, path, key string }{
		{"PUT", "/v1/sessions/" + id + "/context", keyAll},
		{"PATCH", "/v1/sessions/" + id + "/context", keyAll},
		{"POST", "/v1/sessions/" + id + "/attributes", keyAll},
		{"POST", "/v1/sessions/" + id + "/login", keyAll},
		{"POST", "/v1/sync/touch", keyEdge},
	} {
		for _, body := range []any{nil, "", "  \n"} {
			r := o.do(c.method, c.path, c.key, body)
			e, _ := r.json(t)["error"].(map[string]any)
			if r.status != 400 || e["field"] != "body" || e["code"] != "invalid_input" {
				t.Fatalf("%s %s with body %q: %d %s", c.method, c.path, body, r.status, r.body)
			}
		}
	}
	if s, _ := o.getCBOR(id); s.Version != 1 {
		t.Fatalf("an empty body wrote: %+v", s)
	}
	// The routes whose body is optional still take none.
	if r := o.do("POST", "/v1/sessions", keyAll, nil); r.status != 201 {
		t.Fatalf("create without a body: %d %s", r.status, r.body)
	}
	if r := o.do("PUT", "/v1/shared/empty", keyAll, nil); r.status != 201 {
		t.Fatalf("shared without a body: %d %s", r.status, r.body)
	}
}

// TestIfMatchStrong: If-Match takes strong tags only.
func TestIfMatchStrong(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	id := o.create(nil)
	for _, tag := range []string{`W/"1"`, `w/"1"`, ` W/"1" `} {
		r := o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, `{"custom":{"a":1}}`, "If-Match", tag)
		if e, _ := r.json(t)["error"].(map[string]any); r.status != 400 || e["field"] != "If-Match" {
			t.Fatalf("If-Match %s: %d %s", tag, r.status, r.body)
		}
	}
	for _, tag := range []string{`"1"`, `1`} {
		if r := o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, `{"custom":{"a":1}}`, "If-Match", tag); r.status != 200 && r.status != 412 {
			t.Fatalf("If-Match %s: %d %s", tag, r.status, r.body)
		}
	}
}

// TestAmbiguousFraming sends Content-Length and Transfer-Encoding together
// on a raw connection: 400, and the connection is closed.
func TestAmbiguousFraming(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	id := o.create(nil)
	body := `{"custom":{"a":1}}`
	chunked := "12\r\n" + body + "\r\n0\r\n\r\n"
	head := "PATCH /v1/sessions/" + id + "/context HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + keyAll + "\r\nContent-Type: application/json\r\n"
	for _, framing := range []string{
		"Content-Length: 18\r\nTransfer-Encoding: chunked\r\n",
		"Transfer-Encoding: chunked\r\nContent-Length: 18\r\n",
		"transfer-encoding: chunked\r\ncontent-length: 5\r\n",
	} {
		res, b, closed := o.raw(head + framing + "\r\n" + chunked)
		if res.StatusCode != 400 || !strings.Contains(b, "Transfer-Encoding") || !closed {
			t.Fatalf("%q: %d %s, closed %v", framing, res.StatusCode, b, closed)
		}
	}
	// "identity" is no transfer coding fasthttp applies, but a proxy in
	// front may read it otherwise.
	for _, framing := range []string{
		"Content-Length: 18\r\nTransfer-Encoding: identity\r\n",
		"Transfer-Encoding: identity\r\nContent-Length: 18\r\n",
	} {
		res, b, closed := o.raw(head + framing + "\r\n" + body)
		if res.StatusCode != 400 || !strings.Contains(b, "Transfer-Encoding") || !closed {
			t.Fatalf("%q: %d %s, closed %v", framing, res.StatusCode, b, closed)
		}
	}
	if s, _ := o.getCBOR(id); s.Version != 1 {
		t.Fatalf("an ambiguous request wrote: version %d", s.Version)
	}
	// Either alone is fine.
	for _, framing := range []string{"Transfer-Encoding: chunked\r\n\r\n" + chunked, "Content-Length: 18\r\n\r\n" + body} {
		if res, b, _ := o.raw(head + framing); res.StatusCode != 200 {
			t.Fatalf("%q: %d %s", framing, res.StatusCode, b)
		}
	}
}

// TestOversizedRequests: a body far over the cap is refused from its head
// (413), a head over maxHeaderBytes with 431.
func TestOversizedRequests(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	id := o.create(nil)
	res, b, _ := o.raw("PATCH /v1/sessions/" + id + "/context HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + keyAll + "\r\nContent-Length: 10000000\r\n\r\n{")
	if res.StatusCode != 413 || !strings.Contains(b, "too_large") {
		t.Fatalf("huge body: %d %s", res.StatusCode, b)
	}
	res, b, _ = o.raw("GET /v1/sessions/" + id + " HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n")
	if res.StatusCode != 431 || !strings.Contains(b, "too_large") {
		t.Fatalf("huge head: %d %s", res.StatusCode, b)
	}
}

// TestValueErrorsNameFields: value errors name the field where the origin
// builds the path (a context nested in the body), never a byte offset.
func TestValueErrorsNameFields(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	id := o.create(nil)
	long := strings.Repeat("x", 2001)
	for _, c := range []struct {
		name, method, path, body, field string
	}{
		{"create context", "POST", "/v1/sessions", `{"context":{"custom":{"name":"` + long + `"}}}`, "context.custom.name"},
		{"create context field", "POST", "/v1/sessions", `{"context":{"currency":5}}`, "context.currency"},
		{"create unknown name", "POST", "/v1/sessions", `{"context":{"colour":"red"}}`, "context.colour"},
		{"create kind", "POST", "/v1/sessions", `{"kind":"robot"}`, "kind"},
		{"login profile", "POST", "/v1/sessions/" + id + "/login", `{"customerId":"c","profile":{"custom":{"name":"` + long + `"}}}`, "profile.custom.name"},
		{"login context", "POST", "/v1/sessions/" + id + "/login", `{"customerId":"c","context":{"public":{"a b":1}}}`, "context.public.a b"},
		{"login without customer", "POST", "/v1/sessions/" + id + "/login", `{"profile":{}}`, "customerId"},
		{"patch", "PATCH", "/v1/sessions/" + id + "/context", `{"custom":{"name":"` + long + `"}}`, "custom.name"},
		{"patch not an object", "PATCH", "/v1/sessions/" + id + "/context", `[1]`, "body"},
		{"attribute", "POST", "/v1/sessions/" + id + "/attributes", `{"namespace":"custom","key":"name","value":"` + long + `"}`, "custom.name"},
		{"attribute list item", "POST", "/v1/sessions/" + id + "/attributes", `{"namespace":"public","key":"l","value":[1,"` + long + `"]}`, "public.l[1]"},
		{"attribute without names", "POST", "/v1/sessions/" + id + "/attributes", `{"value":"` + long + `"}`, "value"},
		{"attribute key", "POST", "/v1/sessions/" + id + "/attributes", `{"namespace":"custom","key":"a b","value":1}`, "custom.a b"},
		// Errors the parser finds name the path from the body's root.
		{"invalid UTF-8", "POST", "/v1/sessions", "{\"context\":{\"custom\":{\"a\":\"\xff\"}}}", "context.custom.a"},
		{"integer beyond int64", "POST", "/v1/sessions", `{"context":{"custom":{"n":99999999999999999999}}}`, "context.custom.n"},
		{"bad decimal", "PATCH", "/v1/sessions/" + id + "/context", `{"custom":{"d":{"$decimal":"1.2.3"}}}`, "custom.d"},
		{"bad time", "POST", "/v1/sessions/" + id + "/login", `{"customerId":"c","profile":{"public":{"t":{"$time":"yesterday"}}}}`, "profile.public.t"},
		{"list item", "PATCH", "/v1/sessions/" + id + "/context", `{"custom":{"l":[1,"` + long + `"]}}`, "custom.l[1]"},
		{"truncated", "PATCH", "/v1/sessions/" + id + "/context", `{"custom":`, "custom"},
		{"malformed", "PATCH", "/v1/sessions/" + id + "/context", `{x`, "body"},
		{"attribute namespace", "POST", "/v1/sessions/" + id + "/attributes", `{"namespace":"secret","key":"k","value":1}`, "namespace"},
		{"items", "GET", "/v1/sessions/" + id + "?items=nothing", "", "items"},
		{"minVersion", "GET", "/v1/sessions/" + id + "?minVersion=x", "", "minVersion"},
		{"sync limit", "GET", "/v1/sync?after=0&limit=-1", "", "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := keyAll
			if strings.HasPrefix(c.path, "/v1/sync") {
				key = keyEdge
			}
			var body any
			if c.body != "" {
				body = c.body
			}
			r := o.do(c.method, c.path, key, body)
			e, _ := r.json(t)["error"].(map[string]any)
			if r.status != 400 || e["field"] != c.field || strings.Contains(e["message"].(string), "byte") {
				t.Fatalf("%d %s, want field %q", r.status, r.body, c.field)
			}
		})
	}
}

// TestRefusalsCounted: requests fasthttp refuses before any route sees
// them (a malformed request line, a head over http.maxHeaderBytes, a body
// declared over the read limit, a head that does not arrive in time) are
// answered with the JSON error and counted in
// sessionedge_http_requests_total under route "unparsed".
func TestRefusalsCounted(t *testing.T) {
	cfg := baseConfig(t)
	cfg.HTTP.HeaderTimeout = Duration(300 * time.Millisecond)
	o := startOrigin(t, cfg)
	for _, c := range []struct {
		text   string
		status int
	}{
		{"NOT AN HTTP REQUEST\r\n\r\n", 400},
		{"GET /v1/sessions HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", 431},
		{"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{}", 413},
		{"GET /v1/sessions HTTP/1.1\r\nHost: x\r\n", 408}, // the head never ends
	} {
		res, body, _ := o.raw(c.text)
		if res.StatusCode != c.status || !strings.Contains(body, `"error"`) {
			t.Fatalf("%.40q: %d %s, want %d", c.text, res.StatusCode, body, c.status)
		}
	}
	r := o.get(o.admin + "/metrics")
	for _, code := range []string{"400", "408", "413", "431"} {
		want := `sessionedge_http_requests_total{code="` + code + `",route="unparsed"} 1`
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
