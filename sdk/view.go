package sdk

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The headers the edge forwards to apps (contracts), and the response header
// an app uses to hand a new token to the edge.
const (
	HeaderID            = "x-session-id"
	HeaderKind          = "x-session-kind"
	HeaderCustomer      = "x-session-customer"
	HeaderVersion       = "x-session-version"
	HeaderGeneration    = "x-session-generation"
	HeaderContext       = "x-session-context"
	HeaderSite          = "x-session-site"
	HeaderCurrency      = "x-session-currency"
	HeaderLocation      = "x-session-location"
	HeaderLocale        = "x-session-locale"
	HeaderCart          = "x-session-cart"
	HeaderTracking      = "x-session-tracking"
	HeaderSegment       = "x-session-segment"
	HeaderContextStatus = "x-session-context-status"
	// HeaderToken is the response header an app sets to a token the origin
	// issued (Login, Logout, Create); the edge turns it into the Set-Cookie
	// and removes it before the browser sees the response.
	HeaderToken = "x-session-token"
)

// The context statuses of HeaderContextStatus.
const (
	StatusOK       = "ok"       // the context is the edge's current copy
	StatusNew      = "new"      // the edge minted the session for this request; the context holds site defaults only
	StatusDegraded = "degraded" // the origin was unreachable; only id and kind are known
)

// fieldHeaders maps the per-field headers to their fields. They duplicate
// what HeaderContext holds, and fill in when the edge sent no context.
var fieldHeaders = [...]struct {
	name  string
	field wire.Field
}{
	{HeaderSite, wire.FieldSiteCode},
	{HeaderCurrency, wire.FieldCurrency},
	{HeaderLocation, wire.FieldTargetLocation},
	{HeaderLocale, wire.FieldLocale},
	{HeaderCart, wire.FieldCartID},
	{HeaderCustomer, wire.FieldCustomerID},
}

// ErrNoSession is returned by ParseView when a request carries no session
// headers (it did not pass through the edge); ErrNotFromEdge when it fails the
// configured edge check; ErrBadHeaders when the headers are malformed.
var (
	ErrNoSession   = errors.New("sessionedge: request has no x-session-id header")
	ErrNotFromEdge = errors.New("sessionedge: request did not come through the edge")
	ErrBadHeaders  = errors.New("sessionedge: malformed x-session-* headers")
)

// View is the session of one request as the edge forwarded it: id, kind,
// versions and the forwarded context (the namespaces the edge is configured
// to forward). It is a snapshot taken at the edge; to change the session, use
// a Client.
type View struct {
	ID         string
	Kind       wire.Kind
	Generation uint32
	Version    uint64 // 0 while the origin has not stored a change yet
	Status     string // StatusOK, StatusNew or StatusDegraded ("" if the edge sent none)
	Segment    string // stable hash of site, currency, locale and location, for cache keys
	Context
}

// CustomerID returns the customer of a logged-in session, or "".
func (v *View) CustomerID() string { return v.Fields[wire.FieldCustomerID].Text }

// LoggedIn reports whether the session is a customer session.
func (v *View) LoggedIn() bool { return v.Kind == wire.KindCustomer }

// EdgeCheck decides which requests an app trusts as coming from the edge.
//
// The trust model: the edge removes every x-session-* header a client sends
// and sets its own, so the headers are as trustworthy as the path from the
// edge to the app. Either the app is reachable only from the edge (bound to
// loopback or a private network the edge alone can reach), or the proxy adds a
// secret header that only it knows (Header and Secret below) and the app
// rejects requests without it. Without either, anyone who can reach the app
// directly can claim any session.
type EdgeCheck struct {
	// Header and Secret, when both are set, require that header to carry the
	// secret (compared in constant time). Configure the proxy to add it to
	// requests it forwards, e.g. Envoy's request_headers_to_add.
	Header, Secret string
	// Optional lets requests without session headers through with a nil
	// View, for routes that also serve direct traffic (health checks). By
	// default such requests are rejected.
	Optional bool
}

// Check returns the request's View; get returns a request header's value.
// It returns a nil View and no error for a request without session headers
// when c.Optional is set.
func (c *EdgeCheck) Check(get func(name string) string) (*View, error) {
	if c != nil && c.Header != "" && c.Secret != "" {
		got := get(c.Header)
		if subtle.ConstantTimeCompare([]byte(got), []byte(c.Secret)) != 1 {
			return nil, ErrNotFromEdge
		}
	}
	v, err := ParseView(get)
	if errors.Is(err, ErrNoSession) && c != nil && c.Optional {
		return nil, nil
	}
	return v, err
}

// ParseView reads the session headers of a request; get returns a request
// header's value ("" when absent). It checks only the form of the headers,
// not where they came from: see EdgeCheck.
func ParseView(get func(name string) string) (*View, error) {
	id := get(HeaderID)
	if id == "" {
		return nil, ErrNoSession
	}
	if _, err := wire.ParseID(id); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadHeaders, HeaderID, err)
	}
	v := &View{ID: id, Status: get(HeaderContextStatus), Segment: get(HeaderSegment)}
	if k := get(HeaderKind); k != "" {
		kind, ok := wire.ParseKind(k)
		if !ok {
			return nil, fmt.Errorf("%w: %s %q", ErrBadHeaders, HeaderKind, k)
		}
		v.Kind = kind
	} else {
		v.Kind = wire.KindAnonymous
	}
	if s := get(HeaderVersion); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q", ErrBadHeaders, HeaderVersion, s)
		}
		v.Version = n
	}
	if s := get(HeaderGeneration); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q", ErrBadHeaders, HeaderGeneration, s)
		}
		v.Generation = uint32(n)
	}
	if enc := get(HeaderContext); enc != "" {
		raw, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadHeaders, HeaderContext, err)
		}
		var s wire.Session
		if err := wire.DecodeSession(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadHeaders, HeaderContext, err)
		}
		v.Fields, v.Attrs = s.Fields, s.Attrs
		// The context was encoded with the session's metadata; where the
		// edge sent no separate header, take it from there.
		if v.Version == 0 {
			v.Version = s.Version
		}
		if v.Generation == 0 {
			v.Generation = s.Generation
		}
	}
	// The field headers fill in what the context lacks: the edge sends them
	// even when it has no context (degraded) and they carry site defaults.
	for _, h := range fieldHeaders {
		if v.Fields[h.field].IsZero() {
			if s := get(h.name); s != "" {
				v.Fields[h.field] = wire.Text(s)
			}
		}
	}
	if v.Fields[wire.FieldTrackingAllowed].IsZero() {
		switch get(HeaderTracking) {
		case "true":
			v.Fields[wire.FieldTrackingAllowed] = wire.Bool(true)
		case "false":
			v.Fields[wire.FieldTrackingAllowed] = wire.Bool(false)
		}
	}
	return v, nil
}
