package sdk

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The headers the edge forwards to apps, and the response headers an app
// uses to talk back to the edge. The edge removes every x-session-* header
// a client sends before anything else runs, and every x-session-* response
// header before the client sees the response.
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
	// HeaderAssertion carries the edge's signature over what it forwards
	// (id, kind, generation, version, status, the request's authority and
	// path, and a digest of HeaderContext); see Verifier.
	HeaderAssertion = "x-session-assertion"
	// HeaderToken is the response header an app sets to a token the origin
	// issued (Login, Logout, Create); the edge turns it into the Set-Cookie
	// and removes it before the browser sees the response.
	HeaderToken = "x-session-token"
	// HeaderWritten is the response header that tells the edge "the
	// session of this request is at this version or later at the origin"
	// (a decimal version). The edge then refreshes its copy before it
	// serves the client's next request, so the client reads its own
	// writes. The middlewares set it for writes made through a Client with
	// the request's context; see WriteRecorder.
	HeaderWritten = "x-session-written"
)

// The context statuses of HeaderContextStatus and View.Status.
const (
	StatusOK       = "ok"       // the context is the edge's current copy
	StatusNew      = "new"      // the edge minted the session for this request, or the origin does not know it yet; the context holds site defaults only
	StatusDegraded = "degraded" // the origin was unreachable; only id, kind and generation are known
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

// The errors of Verifier.Verify and ParseView. ErrNoSession: the request
// carries no session from the edge (no assertion, or with ParseView no
// x-session-id). ErrNotFromEdge: its assertion is invalid, signed with an
// unknown key, stale, or does not match the request (it wraps the
// wire.ErrAssertion* error). ErrBadHeaders: the headers are malformed.
var (
	ErrNoSession   = errors.New("sessionedge: request carries no session from the edge")
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
	Version    uint64 // 0 while the origin has not stored a change yet (StatusNew) or is unreachable (StatusDegraded)
	Status     string // StatusOK, StatusNew or StatusDegraded
	// Segment is the edge's segment of the session, for cache keys: a
	// stable hash of site, currency, locale and location (and of the
	// captured values the edge's configuration includes), as the edge
	// computed it and sent it in the forwarded view. "" when the edge sent
	// none (no context, as in degraded mode).
	Segment string
	Context
}

// CustomerID returns the customer of a logged-in session, or "".
func (v *View) CustomerID() string { return v.Fields[wire.FieldCustomerID].Text }

// LoggedIn reports whether the session is a customer session.
func (v *View) LoggedIn() bool { return v.Kind == wire.KindCustomer }

// DefaultMaxSkew is how far an assertion's issue time may be from the app's
// clock unless Verifier.MaxSkew says otherwise.
const DefaultMaxSkew = 30 * time.Second

// Verifier checks that a request came through the edge and builds its View.
//
// The edge signs every request it forwards with a key it shares with the
// app (HeaderAssertion): the session's id, kind, generation, version and
// context status, the time, the request's authority and path with query,
// and a digest of HeaderContext. Anyone who reaches the app without passing
// the edge can send x-session-* headers, but cannot sign them. A Verifier
// accepts a request only when its assertion verifies, is fresh (within
// MaxSkew of the app's clock) and matches the request, and builds the View
// from the assertion and the digest-checked HeaderContext alone; the
// per-field headers (HeaderCurrency, HeaderCustomer, ...) are not read,
// because nothing binds them to the assertion.
//
// A proxy between the edge and the app must not rewrite the path or the
// Host header, or every assertion fails to verify.
type Verifier struct {
	// Keys are the assertion keys the edge signs with (see
	// ParseAssertionKeys and AssertionKeysFromEnv). Required.
	Keys *wire.AssertionKeys
	// MaxSkew is how far an assertion's issue time may be from Now, either
	// way. Default DefaultMaxSkew.
	MaxSkew time.Duration
	// Now returns the time. Default time.Now.
	Now func() time.Time
}

// Verify checks the assertion of a request and returns its View. authority
// is the request's Host header, path its request target as received (path
// and query, e.g. r.RequestURI in net/http), and get returns a request
// header's value ("" when absent).
func (vf *Verifier) Verify(authority, path string, get func(name string) string) (*View, error) {
	text := get(HeaderAssertion)
	if text == "" {
		return nil, ErrNoSession
	}
	if vf == nil || vf.Keys == nil {
		return nil, fmt.Errorf("%w: no assertion keys configured", ErrNotFromEdge)
	}
	skew := vf.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	now := time.Now
	if vf.Now != nil {
		now = vf.Now
	}
	enc := get(HeaderContext)
	var ctxBytes []byte
	if enc != "" {
		ctxBytes = []byte(enc)
	}
	var a wire.Assertion
	if err := vf.Keys.VerifyAssertion([]byte(text), []byte(authority), []byte(path), ctxBytes, now(), skew, &a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFromEdge, err)
	}
	v := &View{ID: a.ID.String(), Kind: a.Kind, Generation: a.Generation, Version: a.Version, Status: a.Status.String()}
	if enc != "" {
		var s wire.Session
		segment, err := decodeContext(enc, &s)
		if err != nil {
			return nil, err
		}
		if s.ID != a.ID {
			return nil, fmt.Errorf("%w: %s names session %s, the assertion %s", ErrBadHeaders, HeaderContext, s.ID, a.ID)
		}
		v.Fields, v.Attrs, v.Segment = s.Fields, s.Attrs, segment
	}
	return v, nil
}

// decodeContext decodes the forwarded view (wire.DecodeForwardView) into s
// and returns the edge's segment of it.
func decodeContext(enc string, s *wire.Session) (segment string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBadHeaders, HeaderContext, err)
	}
	segment, err = wire.DecodeForwardView(raw, s, nil)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBadHeaders, HeaderContext, err)
	}
	return segment, nil
}

// ParseView reads the session headers of a request without checking where
// they came from; get returns a request header's value ("" when absent).
// Anyone who can reach the app can send these headers, so use it only for
// an app nobody but the edge can reach; a Verifier checks the edge's
// signature instead. Per-field values arrive percent-encoded (bytes outside
// visible ASCII, and '%' itself, as %HH) and are decoded.
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
		var s wire.Session
		segment, err := decodeContext(enc, &s)
		if err != nil {
			return nil, err
		}
		v.Fields, v.Attrs = s.Fields, s.Attrs
		if v.Segment == "" {
			v.Segment = segment
		}
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
		if !v.Fields[h.field].IsZero() {
			continue
		}
		if s := get(h.name); s != "" {
			text, err := percentDecode(s)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrBadHeaders, h.name, err)
			}
			v.Fields[h.field] = wire.Text(text)
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

// percentDecode undoes the edge's encoding of per-field header values:
// every byte outside 0x21-0x7e, and '%' itself, is sent as %HH. The result
// must be UTF-8, as every text value of a session is.
func percentDecode(s string) (string, error) {
	i := 0
	for i < len(s) && s[i] != '%' {
		i++
	}
	if i == len(s) {
		return s, nil
	}
	out := make([]byte, 0, len(s))
	out = append(out, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated %-escape")
		}
		var b [1]byte
		if _, err := hex.Decode(b[:], []byte(s[i+1:i+3])); err != nil {
			return "", fmt.Errorf("bad %%-escape %q", s[i:i+3])
		}
		out = append(out, b[0])
		i += 2
	}
	if !utf8.Valid(out) {
		return "", errors.New("not UTF-8 once decoded")
	}
	return string(out), nil
}
