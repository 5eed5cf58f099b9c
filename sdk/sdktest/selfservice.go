package sdktest

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// maxSelfServiceBody bounds a self-service PATCH body, as the filter does.
const maxSelfServiceBody = 32 << 10

// selfService answers the self-service endpoints under the prefix; rest is
// the path after it.
func (e *FakeEdge) selfService(w http.ResponseWriter, r *http.Request, rest string) {
	var route string
	switch {
	case rest == "context":
		route = "context"
	case strings.HasPrefix(rest, "context/public/") && len(rest) > len("context/public/"):
		route = "attribute"
	case rest == "sessions":
		route = "sessions"
	case rest == "sessions/others":
		route = "others"
	default:
		selfError(w, http.StatusNotFound, "not_found", "no such self-service endpoint", "")
		return
	}
	allowed := map[string][]string{"context": {"GET", "PATCH"}, "attribute": {"DELETE"}, "sessions": {"GET"}, "others": {"DELETE"}}[route]
	if !slices.Contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		selfError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed", "")
		return
	}
	if r.Method != http.MethodGet && e.crossSite(r) {
		selfError(w, http.StatusForbidden, "forbidden", "cross-site self-service writes are refused", "")
		return
	}
	c, ok := e.token(r)
	if !ok && !(route == "context" && r.Method == http.MethodGet) {
		selfError(w, http.StatusUnauthorized, "unauthorized", "no valid session token", "")
		return
	}
	switch {
	case route == "context" && r.Method == http.MethodGet:
		if ok {
			if s := e.cfg.Origin.Session(c.ID.String()); s != nil && (s.Ended != 0 || s.Generation != c.Generation) {
				selfError(w, http.StatusUnauthorized, "unauthorized", "the session token is no longer valid", "")
				return
			}
		}
		f := e.resolve(w, r)
		e.replyView(w, f.view)
	case route == "context":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSelfServiceBody+1))
		if err != nil || len(body) > maxSelfServiceBody {
			selfError(w, http.StatusRequestEntityTooLarge, "too_large", "body too large", "")
			return
		}
		ops, field, msg := e.checkPatch(body)
		if msg != "" {
			selfError(w, http.StatusBadRequest, "invalid_input", msg, field)
			return
		}
		e.write(w, r, &c, ops)
	case route == "attribute":
		key := strings.TrimPrefix(rest, "context/public/")
		if err := wire.DefaultLimits.ValidateKey("public."+key, key); err != nil {
			selfError(w, http.StatusBadRequest, "invalid_input", "bad attribute key", "public."+key)
			return
		}
		e.write(w, r, &c, []wire.Op{{Code: wire.OpDeleteAttr, NS: wire.NamespacePublic, Key: key}})
	default:
		body, status, code := e.cfg.Origin.selfPeers(&c, route == "others")
		if status != http.StatusOK {
			e.originRefused(w, status, code)
			return
		}
		if route == "others" {
			e.Sync() // the ends reach this edge at once, as if through the feed
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "private, no-store")
		w.Write(body)
	}
}

// token returns the verified claims of the request's session cookie.
func (e *FakeEdge) token(r *http.Request) (wire.Claims, bool) {
	var c wire.Claims
	ck, err := r.Cookie(e.cfg.Cookie)
	if err != nil {
		return c, false
	}
	return c, e.cfg.Origin.Keyring().VerifyToken([]byte(ck.Value), time.Now().Unix(), &c) == nil
}

// crossSite reports whether a write comes from another site: Sec-Fetch-Site
// present and not same-origin, same-site or none, or an Origin that is not
// the request's own.
func (e *FakeEdge) crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "same-site", "none":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	return origin != "" && !strings.EqualFold(origin, "http://"+r.Host) && !strings.EqualFold(origin, "https://"+r.Host)
}

// checkPatch checks a PATCH context body: a JSON merge patch of the public
// namespace and the self-service fields, each text field within its
// allowed values. It returns the ops, or the field at fault and why.
func (e *FakeEdge) checkPatch(body []byte) (ops []wire.Op, field, msg string) {
	v, err := wire.ParseValueJSONLimits(body, &wire.DefaultLimits)
	if err != nil {
		if fe, ok := err.(*wire.FieldError); ok {
			return nil, fe.Field, fe.Reason
		}
		return nil, "", err.Error()
	}
	if v.Type != wire.TypeMap {
		return nil, "body", "the body must be a JSON object"
	}
	for _, a := range v.Map {
		if a.Key == "public" {
			continue
		}
		f, ok := wire.ParseField(a.Key)
		if !ok {
			return nil, a.Key, "only public and the shopper's fields can be changed here"
		}
		if !slices.Contains(e.cfg.SelfServiceFields, f) {
			return nil, a.Key, "this field cannot be changed here"
		}
		allowed, listed := e.cfg.Allowed[f]
		if !listed {
			allowed = []string{e.cfg.Defaults[f]}
		}
		switch {
		case a.Value.IsZero(): // null: back to the site's default
		case f == wire.FieldTrackingAllowed:
			if a.Value.Type != wire.TypeBool {
				return nil, a.Key, "must be true, false or null"
			}
		case a.Value.Type != wire.TypeText:
			return nil, a.Key, "must be a string or null"
		case !slices.Contains(allowed, a.Value.Text):
			return nil, a.Key, "this value is not offered on this site"
		}
	}
	ops, err = wire.ContextOps(v, false, &wire.DefaultLimits)
	if err != nil {
		if fe, ok := err.(*wire.FieldError); ok {
			return nil, fe.Field, fe.Reason
		}
		return nil, "", err.Error()
	}
	return ops, "", ""
}

// write applies a self-service write at the origin and answers the new
// public view; the cached copy is dropped, so the client's next request
// sees the write.
func (e *FakeEdge) write(w http.ResponseWriter, r *http.Request, c *wire.Claims, ops []wire.Op) {
	s, status, code, msg := e.cfg.Origin.selfService(c, ops, e.initOps(r))
	e.mu.Lock()
	delete(e.cache, c.ID)
	e.mu.Unlock()
	if status != http.StatusOK {
		if code == "invalid_input" {
			selfError(w, status, code, msg, "")
			return
		}
		e.originRefused(w, status, code)
		return
	}
	e.withDefaults(s)
	e.replyView(w, s)
}

// originRefused answers what the origin refused: a token it no longer
// takes (the session ended or moved to another generation) is 401, as at
// the filter.
func (e *FakeEdge) originRefused(w http.ResponseWriter, status int, code string) {
	switch status {
	case http.StatusGone, http.StatusConflict:
		selfError(w, http.StatusUnauthorized, "unauthorized", "the session token is no longer valid", "")
	default:
		selfError(w, status, code, code, "")
	}
}

// replyView answers the public view of s: its well-known fields without the
// customer id, and its public namespace.
func (e *FakeEdge) replyView(w http.ResponseWriter, s *wire.Session) {
	v := s.Clone()
	v.Fields[wire.FieldCustomerID] = wire.Value{}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-store")
	w.Write(wire.AppendContextJSON(nil, v, 1<<wire.NamespacePublic))
}

func selfError(w http.ResponseWriter, status int, code, msg, field string) {
	b := []byte(`{"error":{"code":`)
	b = wire.AppendStringJSON(b, code)
	b = wire.AppendStringJSON(append(b, `,"message":`...), msg)
	if field != "" {
		b = wire.AppendStringJSON(append(b, `,"field":`...), field)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-store")
	w.WriteHeader(status)
	w.Write(append(b, "}}"...))
}
