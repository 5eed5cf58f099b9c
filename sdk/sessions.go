package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// WriteOption changes how a call is made. Each method says which options
// it takes; given one it does not take, it fails with ErrInvalidInput
// before sending anything.
type WriteOption func(*writeOptions)

type writeOptions struct {
	ifMatch  uint64
	hasIf    bool
	upsert   bool
	lifetime *Lifetime
	token    string
}

// IfMatch makes a write apply only while the session is at version; otherwise
// it fails with ErrPreconditionFailed and *Error.CurrentVersion holds the
// version the session is at.
func IfMatch(version uint64) WriteOption {
	return func(o *writeOptions) { o.ifMatch, o.hasIf = version, true }
}

// Upsert makes a write to an id the origin does not know yet create the
// session (anonymous, generation 1) and apply the write in the same change.
// Apps use it for sessions the edge minted and the origin has not heard of
// yet. An ended session still answers ErrGone. Given the request's context
// (the middlewares' WriteRecorder, NewWriteRecorderFor), an upsert of a
// session the edge minted for this request also gives the session the site
// defaults and public values the edge applied, as the edge's own report
// would.
func Upsert() WriteOption {
	return func(o *writeOptions) { o.upsert = true }
}

// Lifetime is a session's own idle and hard timeout, in place of the
// timeouts of its kind: a one-time-password wait of 5 minutes, a basket
// that idles out after 20 minutes, a wish list kept for a week. Zero keeps
// the kind's timeout. The origin bounds both by its configured maxima
// (timeouts.<kind>.maxIdle and maxHard) and refuses more with
// ErrInvalidInput naming "lifetime.idle" or "lifetime.hard". Timeouts are
// kept in whole milliseconds.
type Lifetime struct {
	Idle, Hard time.Duration
}

func (l Lifetime) check() error {
	for _, d := range [...]struct {
		name string
		d    time.Duration
	}{{"lifetime.idle", l.Idle}, {"lifetime.hard", l.Hard}} {
		if d.d < 0 {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_input", Field: d.name,
				Message: fmt.Sprintf("%v is negative", d.d)}
		}
	}
	return nil
}

func formatTimeout(d time.Duration) string { return d.String() }

// appendJSON appends the body member "lifetime":{"idle","hard"}, with a
// leading comma; nothing when both are zero.
func (l Lifetime) appendJSON(dst []byte) []byte {
	if l.Idle == 0 && l.Hard == 0 {
		return dst
	}
	dst = append(dst, `,"lifetime":{`...)
	if l.Idle != 0 {
		dst = appendJSONString(append(dst, `"idle":`...), formatTimeout(l.Idle))
	}
	if l.Hard != 0 {
		if l.Idle != 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(append(dst, `"hard":`...), formatTimeout(l.Hard))
	}
	return append(dst, '}')
}

// WithLifetime gives a session its own lifetime (see Lifetime) when the
// call creates it: Create, PutShared (when the shared session is new) and,
// with Upsert, Replace, Patch and SetAttribute when the id is unknown to the
// origin. A write to a session that exists leaves its lifetime as it is.
// Login takes it too: the logged-in session's lifetime (without one, the
// customer timeouts), its hard deadline never later than the current one.
// A logout returns a session to the anonymous timeouts. Lifetimes are at
// least a second.
//
// A session the edge minted is created at the origin by whichever comes
// first, the app's first upsert or the edge's activity report (sent once
// the client's cookie came back): an app that must be sure of the lifetime
// sets it on its first write in the request that minted the session
// (View.Status StatusNew).
func WithLifetime(l Lifetime) WriteOption {
	return func(o *writeOptions) { o.lifetime = &l }
}

// WithToken sends the session's token (the client's cookie value, or a
// token the origin issued) with the call in X-Session-Token. The origin
// then acts only if the token is valid, for this session, and of its
// current generation, as it does for the edge's calls; otherwise the call
// fails with ErrInvalidToken, ErrTokenExpired, ErrTokenMismatch or
// ErrStaleGeneration (*Error.CurrentGeneration holds the session's). It
// guards a write against acting on a newer login than the one the app saw.
func WithToken(token string) WriteOption {
	return func(o *writeOptions) { o.token = token }
}

// What a call takes.
type optSet uint8

const (
	takesIfMatch optSet = 1 << iota
	takesUpsert
	takesLifetimeQuery // as ?idleTimeout=&hardTimeout=
	takesLifetimeBody  // as the body member "lifetime"
	takesToken

	writeOpts = takesIfMatch | takesUpsert | takesToken
)

// options collects opts and checks them against what the call takes.
func options(call string, takes optSet, opts []WriteOption) (writeOptions, error) {
	var o writeOptions
	for _, f := range opts {
		f(&o)
	}
	bad := ""
	switch {
	case o.hasIf && takes&takesIfMatch == 0:
		bad = "IfMatch"
	case o.upsert && takes&takesUpsert == 0:
		bad = "Upsert"
	case o.lifetime != nil && takes&(takesLifetimeQuery|takesLifetimeBody) == 0:
		bad = "WithLifetime"
	case o.token != "" && takes&takesToken == 0:
		bad = "WithToken"
	}
	if bad != "" {
		return o, &Error{Status: http.StatusBadRequest, Code: "invalid_input", Field: "options",
			Message: call + " does not take " + bad}
	}
	if o.lifetime != nil {
		if err := o.lifetime.check(); err != nil {
			return o, err
		}
	}
	return o, nil
}

// apply puts the options into r's header and query (a lifetime only where
// the route takes it in the query; body members are the caller's).
func (o writeOptions) apply(r *request, takes optSet) {
	if o.hasIf {
		r.ifMatch = `"` + strconv.FormatUint(o.ifMatch, 10) + `"`
	}
	r.token = o.token
	set := func(k, v string) {
		if r.query == nil {
			r.query = url.Values{}
		}
		r.query.Set(k, v)
	}
	if o.upsert {
		set("upsert", "true")
	}
	if l := o.lifetime; l != nil && takes&takesLifetimeQuery != 0 {
		if l.Idle != 0 {
			set("idleTimeout", formatTimeout(l.Idle))
		}
		if l.Hard != 0 {
			set("hardTimeout", formatTimeout(l.Hard))
		}
	}
}

// bodyLifetime is the lifetime for a "lifetime" body member.
func (o writeOptions) bodyLifetime() Lifetime {
	if o.lifetime == nil {
		return Lifetime{}
	}
	return *o.lifetime
}

func sessionPath(id string, rest ...string) string {
	p := "/v1/sessions/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// checkID rejects ids that cannot be session ids before a request is sent, so
// a typo fails fast and names the field.
func checkID(id string) error {
	if _, err := wire.ParseID(id); err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_input", Field: "id",
			Message: fmt.Sprintf("%q is not a session id", id)}
	}
	return nil
}

// write sends a write of session id and records the version it reached in
// the WriteRecorder of ctx, if any.
func (c *Client) write(ctx context.Context, id string, r request) (*Session, error) {
	withInit(ctx, id, &r)
	s, err := c.session(ctx, r)
	if err == nil {
		recordWrite(ctx, id, s)
	}
	return s, err
}

// tokenWrite is write for the calls that answer a token.
func (c *Client) tokenWrite(ctx context.Context, id string, r request) (*Issued, error) {
	withInit(ctx, id, &r)
	in, err := c.tokenCall(ctx, r)
	if err == nil {
		recordWrite(ctx, id, in.Session)
	}
	return in, err
}

func (c *Client) session(ctx context.Context, r request) (*Session, error) {
	var j sessionJSON
	if err := c.do(ctx, r, &j); err != nil {
		return nil, err
	}
	s, err := j.session()
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", errDecode, r.method, r.path, err)
	}
	return s, nil
}

// Issued is a session and the token the origin issued for it (the cookie
// value): the answer of Create, Login, Logout and Refresh. Hand the token to
// the edge with sessionhttp.SetToken or sessionfasthttp.SetToken.
type Issued struct {
	Session *Session
	Token   string
}

// Create starts a session with an initial context, which may be nil: an
// anonymous one, or, when customerID is not empty, a customer session of that
// customer. Shared sessions are made with PutShared. It takes WithLifetime.
func (c *Client) Create(ctx context.Context, customerID string, initial *Context, opts ...WriteOption) (*Issued, error) {
	o, err := options("Create", takesLifetimeBody, opts)
	if err != nil {
		return nil, err
	}
	body := []byte(`{"kind":`)
	if customerID == "" {
		body = appendJSONString(body, wire.KindAnonymous.String())
	} else {
		body = appendJSONString(body, wire.KindCustomer.String())
		body = appendJSONString(append(body, `,"customerId":`...), customerID)
	}
	if initial != nil {
		body = append(body, `,"context":`...)
		if body, err = appendContextJSON(body, initial); err != nil {
			return nil, err
		}
	}
	body = append(o.bodyLifetime().appendJSON(body), '}')
	return c.tokenCall(ctx, request{method: http.MethodPost, path: "/v1/sessions", body: body})
}

func (c *Client) tokenCall(ctx context.Context, r request) (*Issued, error) {
	var j struct {
		ID      string      `json:"id"`
		Token   string      `json:"token"`
		Session sessionJSON `json:"session"`
	}
	if err := c.do(ctx, r, &j); err != nil {
		return nil, err
	}
	s, err := j.Session.session()
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", errDecode, r.method, r.path, err)
	}
	if s.ID == "" {
		s.ID = j.ID
	}
	return &Issued{Session: s, Token: j.Token}, nil
}

// Get returns a session with its metadata and context. items, when given,
// selects what of the context to return, and nothing else is returned: a
// well-known field by name ("cartId"), an attribute as "namespace.key"
// ("custom.color"), or a whole namespace ("public"). A listed item the
// session does not hold is simply absent; an item that names no field and
// no namespace fails with ErrInvalidInput. Without items the whole context
// is returned.
func (c *Client) Get(ctx context.Context, id string, items ...string) (*Session, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	r := request{method: http.MethodGet, path: sessionPath(id)}
	if len(items) > 0 {
		r.query = url.Values{"items": {strings.Join(items, ",")}}
	}
	return c.session(ctx, r)
}

// The options of the writes of a session's context.
const contextWriteOpts = writeOpts | takesLifetimeQuery

// Replace replaces a session's whole context (the customer id stays: only
// Login and Logout change it). It takes IfMatch, Upsert, WithLifetime and
// WithToken.
func (c *Client) Replace(ctx context.Context, id string, ctxt *Context, opts ...WriteOption) (*Session, error) {
	r, err := c.prepare("Replace", id, contextWriteOpts, opts, request{method: http.MethodPut, path: sessionPath(id, "context")})
	if err != nil {
		return nil, err
	}
	if r.body, err = appendContextJSON(nil, ctxt); err != nil {
		return nil, err
	}
	return c.write(ctx, id, r)
}

// Patch merges p into a session's context and returns the new state. It
// takes IfMatch, Upsert, WithLifetime and WithToken.
func (c *Client) Patch(ctx context.Context, id string, p *Patch, opts ...WriteOption) (*Session, error) {
	r, err := c.prepare("Patch", id, contextWriteOpts, opts, request{method: http.MethodPatch, path: sessionPath(id, "context")})
	if err != nil {
		return nil, err
	}
	if r.body, err = p.appendJSON(nil); err != nil {
		return nil, err
	}
	return c.write(ctx, id, r)
}

// SetAttribute sets one attribute. It takes IfMatch, Upsert, WithLifetime
// and WithToken.
func (c *Client) SetAttribute(ctx context.Context, id string, ns wire.Namespace, key string, v wire.Value, opts ...WriteOption) (*Session, error) {
	r, err := c.prepare("SetAttribute", id, contextWriteOpts, opts, request{method: http.MethodPost, path: sessionPath(id, "attributes")})
	if err != nil {
		return nil, err
	}
	body := []byte(`{"namespace":`)
	body = appendJSONString(body, ns.String())
	body = appendJSONString(append(body, `,"key":`...), key)
	body = append(body, `,"value":`...)
	if body, err = appendValueJSON(body, v); err != nil {
		return nil, fmt.Errorf("%s.%s: %w", ns, key, err)
	}
	r.body = append(body, '}')
	return c.write(ctx, id, r)
}

// DeleteAttribute deletes one attribute. It takes IfMatch, Upsert and
// WithToken.
func (c *Client) DeleteAttribute(ctx context.Context, id string, ns wire.Namespace, key string, opts ...WriteOption) (*Session, error) {
	r, err := c.prepare("DeleteAttribute", id, writeOpts, opts, request{method: http.MethodDelete, path: sessionPath(id, "attributes", ns.String(), key)})
	if err != nil {
		return nil, err
	}
	return c.write(ctx, id, r)
}

// ClearData deletes a session's context but keeps the session. It takes
// IfMatch and WithToken.
func (c *Client) ClearData(ctx context.Context, id string, opts ...WriteOption) (*Session, error) {
	r, err := c.prepare("ClearData", id, takesIfMatch|takesToken, opts, request{method: http.MethodDelete, path: sessionPath(id, "data")})
	if err != nil {
		return nil, err
	}
	return c.write(ctx, id, r)
}

// End ends a session: its context is dropped, the end webhook fires, and
// every later call for the id answers ErrGone. It takes WithToken.
func (c *Client) End(ctx context.Context, id string, opts ...WriteOption) error {
	r, err := c.prepare("End", id, takesToken, opts, request{method: http.MethodDelete, path: sessionPath(id)})
	if err != nil {
		return err
	}
	return c.do(ctx, r, nil)
}

// Flush asks the origin to deliver the session's current context now, in a
// signed "session.flushed" webhook (EventSessionFlushed), without ending or
// changing the session, and returns the session: for a back office or an
// analytics pipeline that wants the context mid-session, not only at its
// end. A change still pending in the origin's changed window is sent first.
// It needs the sessions:write scope and takes WithToken.
func (c *Client) Flush(ctx context.Context, id string, opts ...WriteOption) (*Session, error) {
	r, err := c.prepare("Flush", id, takesToken, opts, request{method: http.MethodPost, path: sessionPath(id, "flush"), body: []byte("{}")})
	if err != nil {
		return nil, err
	}
	return c.session(ctx, r)
}

// prepare checks id and the options of a call of session id and applies
// them to r.
func (c *Client) prepare(call, id string, takes optSet, opts []WriteOption, r request) (request, error) {
	if err := checkID(id); err != nil {
		return r, err
	}
	o, err := options(call, takes, opts)
	if err != nil {
		return r, err
	}
	o.apply(&r, takes)
	return r, nil
}

// Login makes a session a customer session: same id and context, a new
// generation (older tokens die), and the profile's fields (currency, locale,
// ...) set over the defaults. Hand the returned token to the edge with
// SetToken so the browser's cookie is replaced. It takes IfMatch, Upsert,
// WithLifetime (the logged-in session's own timeouts, else the customer
// timeouts; its hard deadline can only come closer) and WithToken.
//
// With a customer session limit configured at the origin, a login beyond it
// either ends the customer's oldest other session (reason "evicted") or
// fails with ErrSessionLimit.
func (c *Client) Login(ctx context.Context, id, customerID string, profile *Context, opts ...WriteOption) (*Issued, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	const takes = writeOpts | takesLifetimeBody
	o, err := options("Login", takes, opts)
	if err != nil {
		return nil, err
	}
	body := []byte(`{"customerId":`)
	body = appendJSONString(body, customerID)
	if profile != nil {
		body = append(body, `,"profile":`...)
		if body, err = appendContextJSON(body, profile); err != nil {
			return nil, err
		}
	}
	body = append(o.bodyLifetime().appendJSON(body), '}')
	r := request{method: http.MethodPost, path: sessionPath(id, "login"), body: body}
	o.apply(&r, takes)
	return c.tokenWrite(ctx, id, r)
}

// Logout makes a session anonymous again: privacy attributes are cleared,
// the cart and custom attributes stay, and a new generation starts. Hand the
// returned token to the edge with SetToken. The session's idle timeout
// becomes the anonymous one again; its hard deadline stays. It takes
// WithToken; with it, a session that is not logged in fails with
// ErrNotLoggedIn.
func (c *Client) Logout(ctx context.Context, id string, opts ...WriteOption) (*Issued, error) {
	r, err := c.prepare("Logout", id, takesToken, opts, request{method: http.MethodPost, path: sessionPath(id, "logout"), body: []byte("{}")})
	if err != nil {
		return nil, err
	}
	return c.tokenWrite(ctx, id, r)
}

// Refresh extends a session's idle deadline and returns a token that says
// so; hand it to the edge so the cookie's idle deadline moves too. It takes
// WithToken.
func (c *Client) Refresh(ctx context.Context, id string, opts ...WriteOption) (*Issued, error) {
	r, err := c.prepare("Refresh", id, takesToken, opts, request{method: http.MethodPost, path: sessionPath(id, "refresh"), body: []byte("{}")})
	if err != nil {
		return nil, err
	}
	return c.tokenWrite(ctx, id, r)
}

// PutShared creates the shared session called name with an initial context
// (which may be nil), or finds it when it exists: an existing session is
// returned unchanged, so every service can call PutShared at start-up. Its id
// is derived from the name, so every service that knows the name finds it;
// change it like any session, by id (Patch, Replace with IfMatch). It takes
// WithLifetime, applied when the call creates the session (shared sessions
// have no timeouts unless given one).
func (c *Client) PutShared(ctx context.Context, name string, initial *Context, opts ...WriteOption) (*Session, error) {
	if name == "" {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_input", Field: "name", Message: "empty shared session name"}
	}
	o, err := options("PutShared", takesLifetimeBody, opts)
	if err != nil {
		return nil, err
	}
	if initial == nil {
		initial = &Context{}
	}
	body, err := appendContextJSON(nil, initial)
	if err != nil {
		return nil, err
	}
	// The body is the initial context; the lifetime rides in it as one
	// more member.
	if l := o.bodyLifetime().appendJSON(nil); len(l) > 0 {
		if len(body) == 2 { // "{}"
			l = l[1:]
		}
		body = append(append(body[:len(body)-1], l...), '}')
	}
	return c.session(ctx, request{method: http.MethodPut, path: "/v1/shared/" + url.PathEscape(name), body: body})
}

// GetShared finds the shared session called name.
func (c *Client) GetShared(ctx context.Context, name string) (*Session, error) {
	if name == "" {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_input", Field: "name", Message: "empty shared session name"}
	}
	return c.session(ctx, request{method: http.MethodGet, path: "/v1/shared/" + url.PathEscape(name)})
}

// CustomerSessions lists the live sessions of a customer. It needs the
// sessions:admin scope.
func (c *Client) CustomerSessions(ctx context.Context, customerID string) ([]*Session, error) {
	var raw json.RawMessage
	path := "/v1/customers/" + url.PathEscape(customerID) + "/sessions"
	if err := c.do(ctx, request{method: http.MethodGet, path: path}, &raw); err != nil {
		return nil, err
	}
	// Accept both a bare array and {"sessions":[...]}.
	var list []sessionJSON
	if err := json.Unmarshal(raw, &list); err != nil {
		var obj struct {
			Sessions []sessionJSON `json:"sessions"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("%w: GET %s: %v", errDecode, path, err)
		}
		list = obj.Sessions
	}
	out := make([]*Session, 0, len(list))
	for i := range list {
		s, err := list[i].session()
		if err != nil {
			return nil, fmt.Errorf("%w: GET %s: %v", errDecode, path, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// RevokeCustomer ends every session of a customer (e.g. after a password
// change). It needs the sessions:admin scope.
func (c *Client) RevokeCustomer(ctx context.Context, customerID string) error {
	path := "/v1/customers/" + url.PathEscape(customerID) + "/sessions"
	return c.do(ctx, request{method: http.MethodDelete, path: path}, nil)
}
