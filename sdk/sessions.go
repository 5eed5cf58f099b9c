package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// WriteOption changes how a write is applied.
type WriteOption func(*writeOptions)

type writeOptions struct {
	ifMatch uint64
	hasIf   bool
	upsert  bool
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
// yet. An ended session still answers ErrGone.
func Upsert() WriteOption {
	return func(o *writeOptions) { o.upsert = true }
}

func (o writeOptions) apply(r *request) {
	if o.hasIf {
		r.ifMatch = `"` + strconv.FormatUint(o.ifMatch, 10) + `"`
	}
	if o.upsert {
		if r.query == nil {
			r.query = url.Values{}
		}
		r.query.Set("upsert", "true")
	}
}

func options(opts []WriteOption) writeOptions {
	var o writeOptions
	for _, f := range opts {
		f(&o)
	}
	return o
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
	s, err := c.session(ctx, r)
	if err == nil {
		recordWrite(ctx, id, s)
	}
	return s, err
}

// tokenWrite is write for the calls that answer a token.
func (c *Client) tokenWrite(ctx context.Context, id string, r request) (*Issued, error) {
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
// customer. Shared sessions are made with PutShared.
func (c *Client) Create(ctx context.Context, customerID string, initial *Context) (*Issued, error) {
	body := []byte(`{"kind":`)
	if customerID == "" {
		body = appendJSONString(body, wire.KindAnonymous.String())
	} else {
		body = appendJSONString(body, wire.KindCustomer.String())
		body = appendJSONString(append(body, `,"customerId":`...), customerID)
	}
	if initial != nil {
		body = append(body, `,"context":`...)
		var err error
		if body, err = appendContextJSON(body, initial); err != nil {
			return nil, err
		}
	}
	body = append(body, '}')
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

// Replace replaces a session's whole context (the customer id stays: only
// Login and Logout change it).
func (c *Client) Replace(ctx context.Context, id string, ctxt *Context, opts ...WriteOption) (*Session, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	body, err := appendContextJSON(nil, ctxt)
	if err != nil {
		return nil, err
	}
	r := request{method: http.MethodPut, path: sessionPath(id, "context"), body: body}
	options(opts).apply(&r)
	return c.write(ctx, id, r)
}

// Patch merges p into a session's context and returns the new state.
func (c *Client) Patch(ctx context.Context, id string, p *Patch, opts ...WriteOption) (*Session, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	body, err := p.appendJSON(nil)
	if err != nil {
		return nil, err
	}
	r := request{method: http.MethodPatch, path: sessionPath(id, "context"), body: body}
	options(opts).apply(&r)
	return c.write(ctx, id, r)
}

// SetAttribute sets one attribute.
func (c *Client) SetAttribute(ctx context.Context, id string, ns wire.Namespace, key string, v wire.Value, opts ...WriteOption) (*Session, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	body := []byte(`{"namespace":`)
	body = appendJSONString(body, ns.String())
	body = appendJSONString(append(body, `,"key":`...), key)
	body = append(body, `,"value":`...)
	body, err := appendValueJSON(body, v)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", ns, key, err)
	}
	body = append(body, '}')
	r := request{method: http.MethodPost, path: sessionPath(id, "attributes"), body: body}
	options(opts).apply(&r)
	return c.write(ctx, id, r)
}

// DeleteAttribute deletes one attribute.
func (c *Client) DeleteAttribute(ctx context.Context, id string, ns wire.Namespace, key string, opts ...WriteOption) (*Session, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	r := request{method: http.MethodDelete, path: sessionPath(id, "attributes", ns.String(), key)}
	options(opts).apply(&r)
	return c.write(ctx, id, r)
}

// ClearData deletes a session's context but keeps the session.
func (c *Client) ClearData(ctx context.Context, id string, opts ...WriteOption) (*Session, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	r := request{method: http.MethodDelete, path: sessionPath(id, "data")}
	options(opts).apply(&r)
	return c.write(ctx, id, r)
}

// End ends a session: its context is dropped, the end webhook fires, and
// every later call for the id answers ErrGone.
func (c *Client) End(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodDelete, path: sessionPath(id)}, nil)
}

// Login makes a session a customer session: same id and context, a new
// generation (older tokens die), and the profile's fields (currency, locale,
// ...) set over the defaults. Hand the returned token to the edge with
// SetToken so the browser's cookie is replaced.
func (c *Client) Login(ctx context.Context, id, customerID string, profile *Context, opts ...WriteOption) (*Issued, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	body := []byte(`{"customerId":`)
	body = appendJSONString(body, customerID)
	if profile != nil {
		body = append(body, `,"profile":`...)
		var err error
		if body, err = appendContextJSON(body, profile); err != nil {
			return nil, err
		}
	}
	body = append(body, '}')
	r := request{method: http.MethodPost, path: sessionPath(id, "login"), body: body}
	options(opts).apply(&r)
	return c.tokenWrite(ctx, id, r)
}

// Logout makes a session anonymous again: privacy attributes are cleared,
// the cart and custom attributes stay, and a new generation starts. Hand the
// returned token to the edge with SetToken.
func (c *Client) Logout(ctx context.Context, id string) (*Issued, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	return c.tokenWrite(ctx, id, request{method: http.MethodPost, path: sessionPath(id, "logout"), body: []byte("{}")})
}

// Refresh extends a session's idle deadline and returns a token that says
// so; hand it to the edge so the cookie's idle deadline moves too.
func (c *Client) Refresh(ctx context.Context, id string) (*Issued, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	return c.tokenWrite(ctx, id, request{method: http.MethodPost, path: sessionPath(id, "refresh"), body: []byte("{}")})
}

// PutShared creates the shared session called name with an initial context
// (which may be nil), or finds it when it exists: an existing session is
// returned unchanged, so every service can call PutShared at start-up. Its id
// is derived from the name, so every service that knows the name finds it;
// change it like any session, by id (Patch, Replace with IfMatch).
func (c *Client) PutShared(ctx context.Context, name string, initial *Context) (*Session, error) {
	if name == "" {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_input", Field: "name", Message: "empty shared session name"}
	}
	if initial == nil {
		initial = &Context{}
	}
	body, err := appendContextJSON(nil, initial)
	if err != nil {
		return nil, err
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
