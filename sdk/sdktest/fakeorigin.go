// Package sdktest helps test apps that use sessionedge: FakeOrigin is an
// in-memory stand-in for the origin API, FakeEdge plays the edge in front of
// an app, and Forward sets the headers the edge forwards on a request, so an
// app's handlers can be tested without any sessionedge process.
package sdktest

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// FakeOriginConfig configures a FakeOrigin. The zero value means defaults.
type FakeOriginConfig struct {
	// APIKeys, when set, maps each accepted API key (a Bearer token) to its
	// scopes: "sessions:read" for GET, "sessions:write" for other session
	// routes, "sessions:admin" for the customer routes. Without keys every
	// request is accepted.
	APIKeys map[string][]string
	// Keyring mints the tokens of create, login and logout. Default: a
	// keyring with one random key.
	Keyring *wire.Keyring
	// SharedSecret derives shared session ids from names. Default: 32 zero bytes.
	SharedSecret []byte
	// Now returns the time. Default time.Now.
	Now func() time.Time
	// CustomerSessions limits the live sessions of one customer, as the
	// origin's configuration of the same name does. Default: no limit.
	CustomerSessions CustomerSessions
}

// CustomerSessions is a limit of the live sessions of one customer.
type CustomerSessions struct {
	// Max is the most live sessions a customer may have; 0 means no limit.
	Max int
	// OnLimit says what a login beyond Max does: "evictOldest" (the
	// default) ends the customer's session that was least recently seen
	// with reason evicted; "refuse" answers 409 session_limit.
	OnLimit string
}

// FakeOrigin is an in-memory origin API served by an httptest.Server on
// loopback. It implements the routes of /v1 an app calls (sessions, shared
// sessions, customers, a session's peers, flush) with the origin's
// semantics (upsert, If-Match, generations, absolute hard deadlines,
// per-session lifetimes within the origin's default maxima, tombstones, the
// customer session limit, the checks of a session token an app sends,
// typed errors, scopes, ?items=); it has no expiry, no webhooks and none of
// the edge's routes (the change feed, activity reports), and keeps
// everything in memory. A FakeEdge in front of it records the devices it
// sees, as the edge's activity reports do.
type FakeOrigin struct {
	*httptest.Server
	cfg FakeOriginConfig

	mu       sync.Mutex
	sessions map[wire.ID]*wire.Session
}

// NewFakeOrigin starts a FakeOrigin. Close it when done.
func NewFakeOrigin(cfg FakeOriginConfig) *FakeOrigin {
	if cfg.Keyring == nil {
		secret := make([]byte, wire.MinKeyLen)
		id, _ := wire.NewID()
		copy(secret, id[:])
		cfg.Keyring, _ = wire.NewKeyring(1, map[uint8][]byte{1: secret})
	}
	if cfg.SharedSecret == nil {
		cfg.SharedSecret = make([]byte, 32)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	o := &FakeOrigin{cfg: cfg, sessions: map[wire.ID]*wire.Session{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sessions", o.create)
	mux.HandleFunc("GET /v1/sessions/{id}", o.session(o.get))
	mux.HandleFunc("PUT /v1/sessions/{id}/context", o.session(o.context(true)))
	mux.HandleFunc("PATCH /v1/sessions/{id}/context", o.session(o.context(false)))
	mux.HandleFunc("POST /v1/sessions/{id}/attributes", o.session(o.setAttr))
	mux.HandleFunc("DELETE /v1/sessions/{id}/attributes/{ns}/{key}", o.session(o.deleteAttr))
	mux.HandleFunc("DELETE /v1/sessions/{id}/data", o.session(o.clearData))
	mux.HandleFunc("DELETE /v1/sessions/{id}", o.session(o.end))
	mux.HandleFunc("POST /v1/sessions/{id}/login", o.session(o.login))
	mux.HandleFunc("POST /v1/sessions/{id}/logout", o.session(o.logout))
	mux.HandleFunc("POST /v1/sessions/{id}/refresh", o.session(o.refresh))
	mux.HandleFunc("POST /v1/sessions/{id}/flush", o.session(o.flush))
	mux.HandleFunc("GET /v1/sessions/{id}/peers", o.session(o.peers))
	mux.HandleFunc("DELETE /v1/sessions/{id}/peers", o.session(o.endPeers))
	mux.HandleFunc("PUT /v1/shared/{name}", o.putShared)
	mux.HandleFunc("GET /v1/shared/{name}", o.getShared)
	mux.HandleFunc("GET /v1/customers/{cid}/sessions", o.customerSessions)
	mux.HandleFunc("DELETE /v1/customers/{cid}/sessions", o.revokeCustomer)
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(cfg.APIKeys) > 0 {
			scopes, ok := cfg.APIKeys[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			if !ok {
				writeError(w, http.StatusUnauthorized, "unauthorized", "missing or unknown API key", "", 0)
				return
			}
			need := "sessions:write"
			switch {
			case strings.HasPrefix(r.URL.Path, "/v1/customers/"):
				need = "sessions:admin"
			case r.Method == http.MethodGet:
				need = "sessions:read"
			}
			if !slices.Contains(scopes, need) {
				writeError(w, http.StatusForbidden, "forbidden", "API key lacks scope "+need, "", 0)
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	return o
}

// Session returns a copy of the session with id (tombstones included), or nil.
func (o *FakeOrigin) Session(id string) *wire.Session {
	sid, err := wire.ParseID(id)
	if err != nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if s := o.sessions[sid]; s != nil {
		return s.Clone()
	}
	return nil
}

// Keyring returns the keyring that signs the fake's tokens.
func (o *FakeOrigin) Keyring() *wire.Keyring { return o.cfg.Keyring }

func writeError(w http.ResponseWriter, status int, code, msg, field string, current uint64) {
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"code": code, "message": msg}
	if field != "" {
		body["field"] = field
	}
	if status == http.StatusPreconditionFailed {
		body["currentVersion"] = current
		w.Header().Set("ETag", `"`+strconv.FormatUint(current, 10)+`"`)
	}
	if code == "stale_generation" {
		body["currentGeneration"] = current
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": body})
}

// writeWireError maps an error of sdk/wire to the API's error answer.
func writeWireError(w http.ResponseWriter, err error) {
	field := ""
	if fe, ok := err.(*wire.FieldError); ok {
		field = fe.Field
		if fe.Err == wire.ErrTooLarge {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error(), field, 0)
			return
		}
	}
	writeError(w, http.StatusBadRequest, "invalid_input", err.Error(), field, 0)
}

func (o *FakeOrigin) writeSession(w http.ResponseWriter, r *http.Request, status int, s *wire.Session) {
	w.Header().Set("ETag", `"`+strconv.FormatUint(s.Version, 10)+`"`)
	if strings.Contains(r.Header.Get("Accept"), "application/cbor") {
		w.Header().Set("Content-Type", "application/cbor")
		w.WriteHeader(status)
		w.Write(wire.AppendSession(nil, s))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(wire.AppendSessionJSON(nil, s, wire.AllNamespaces))
}

func (o *FakeOrigin) token(s *wire.Session) string {
	return string(o.cfg.Keyring.AppendToken(nil, &wire.Claims{Kind: s.Kind, ID: s.ID, Generation: s.Generation,
		IssuedAt: o.cfg.Now().Unix(), IdleDeadline: s.IdleDeadline / 1000, HardDeadline: s.HardDeadline / 1000}))
}

func (o *FakeOrigin) writeToken(w http.ResponseWriter, status int, s *wire.Session, withID bool) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b := []byte(`{`)
	if withID {
		b = append(append(s.ID.AppendText(append(b, `"id":"`...)), '"'), ',')
	}
	b = append(append(b, `"token":`...), wire.AppendStringJSON(nil, o.token(s))...)
	b = append(b, `,"session":`...)
	b = wire.AppendSessionJSON(b, s, wire.AllNamespaces)
	w.Write(append(b, '}'))
}

// The origin's default timeouts of each kind (shared sessions have none).
var kindTimeouts = [...]struct{ idle, hard time.Duration }{
	wire.KindAnonymous: {time.Hour, 24 * time.Hour},
	wire.KindCustomer:  {30 * time.Minute, 6 * time.Hour},
}

// lifetime is a session's own idle and hard timeout in ms (0: its kind's).
type lifetime struct{ idle, hard int64 }

// timeouts returns the idle and hard timeouts of a session of kind k with
// its own lifetime l, in ms (0: none).
func timeouts(k wire.Kind, l lifetime) (idle, hard int64) {
	if int(k) < len(kindTimeouts) {
		idle, hard = kindTimeouts[k].idle.Milliseconds(), kindTimeouts[k].hard.Milliseconds()
	}
	if l.idle > 0 {
		idle = l.idle
	}
	if l.hard > 0 {
		hard = l.hard
	}
	return idle, hard
}

// after returns now + d ms, or 0 (none) for d 0.
func after(now, d int64) int64 {
	if d == 0 {
		return 0
	}
	return now + d
}

// capAt caps an idle deadline at a hard deadline (0: none).
func capAt(idle, hard int64) int64 {
	if hard != 0 && (idle == 0 || idle > hard) {
		return hard
	}
	return idle
}

// parseLifetime reads a lifetime for a session of kind k: the body member
// {"idle","hard"} or the query's idleTimeout and hardTimeout, each at least
// a second and at most four times the kind's timeout (the origin's default
// maxima; unbounded for shared sessions, whose timeouts are none; "none"
// only where the kind's timeout is none). fieldIdle and fieldHard name the
// values in errors.
func parseLifetime(k wire.Kind, idle, hard wire.Value, fieldIdle, fieldHard string) (lifetime, error) {
	var l lifetime
	for _, x := range [...]struct {
		v     wire.Value
		field string
		hard  bool
		dst   *int64
	}{{idle, fieldIdle, false, &l.idle}, {hard, fieldHard, true, &l.hard}} {
		if x.v.IsZero() {
			continue
		}
		d, err := wire.DurationFromValue(x.v)
		if err != nil {
			return l, &wire.FieldError{Field: x.field, Reason: "must be a duration", Err: wire.ErrInvalid}
		}
		var def time.Duration
		if int(k) < len(kindTimeouts) {
			def = kindTimeouts[k].idle
			if x.hard {
				def = kindTimeouts[k].hard
			}
		}
		switch {
		case d == 0, d.IsNone() && def == 0:
			continue // the kind's own
		case d.IsNone():
			return l, &wire.FieldError{Field: x.field, Reason: `"none" is allowed only where the kind's timeout is none`, Err: wire.ErrInvalid}
		case d.Std() < time.Second:
			return l, &wire.FieldError{Field: x.field, Reason: "must be at least 1s", Err: wire.ErrInvalid}
		case def != 0 && d.Std() > 4*def:
			return l, &wire.FieldError{Field: x.field, Reason: "longer than the maximum " + (4 * def).String(), Err: wire.ErrInvalid}
		}
		*x.dst = d.Std().Milliseconds()
	}
	return l, nil
}

// bodyLifetime reads the body member "lifetime" for a session of kind k.
func bodyLifetime(body wire.Value, k wire.Kind) (lifetime, error) {
	lv := member(body, "lifetime")
	if lv.IsZero() {
		return lifetime{}, nil
	}
	if lv.Type != wire.TypeMap {
		return lifetime{}, &wire.FieldError{Field: "lifetime", Reason: "not an object", Err: wire.ErrInvalid}
	}
	return parseLifetime(k, member(lv, "idle"), member(lv, "hard"), "lifetime.idle", "lifetime.hard")
}

// queryLifetime reads ?idleTimeout=&hardTimeout= of an upsert.
func queryLifetime(r *http.Request) (lifetime, error) {
	q := r.URL.Query()
	text := func(name string) wire.Value {
		if v := q.Get(name); v != "" {
			return wire.Text(v)
		}
		return wire.Value{}
	}
	return parseLifetime(wire.KindAnonymous, text("idleTimeout"), text("hardTimeout"), "idleTimeout", "hardTimeout")
}

// create says what apply does with an unknown id.
type create struct {
	kind wire.Kind // 0: answer 404
	life lifetime
	init []wire.Op // applied after the start (X-Session-Init)
}

// apply applies ops to the session with id under the lock. An unknown id
// becomes a new session as c says. ifMatch, when non-empty, must name the
// current version; token, when non-empty, must be a valid token of the
// session's current generation.
func (o *FakeOrigin) apply(w http.ResponseWriter, id wire.ID, c create, ifMatch, token string, ops func(s *wire.Session) ([]wire.Op, error)) (*wire.Session, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.sessions[id]
	if !o.checkToken(w, id, s, token, false) {
		return nil, false
	}
	if (s != nil || c.kind == 0) && !present(w, id, s) {
		return nil, false
	}
	var base uint64
	if s != nil {
		base = s.Version
	}
	if ifMatch != "" {
		// Like the origin: a strong tag only (a weak one cannot promise
		// the exact version a compare-and-swap needs).
		want, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(ifMatch, `"`), `"`), 10, 64)
		if err != nil || !strings.HasPrefix(ifMatch, `"`) {
			writeError(w, http.StatusBadRequest, "invalid_input", "If-Match is not a version", "If-Match", 0)
			return nil, false
		}
		if want != base {
			writeError(w, http.StatusPreconditionFailed, "precondition_failed", "session is at another version", "", base)
			return nil, false
		}
	}
	now := o.cfg.Now().UnixMilli()
	d := wire.Delta{ID: id, BaseVersion: base, Version: base + 1, At: now}
	if s == nil {
		idle, hard := timeouts(c.kind, c.life)
		hard = after(now, hard)
		d.Ops = append(d.Ops, wire.Op{Code: wire.OpStart, Kind: c.kind, Generation: 1, Idle: capAt(after(now, idle), hard), Hard: hard})
		if c.life != (lifetime{}) {
			d.Ops = append(d.Ops, wire.Op{Code: wire.OpLifetime, Idle: c.life.idle, Hard: c.life.hard})
		}
		d.Ops = append(d.Ops, c.init...)
		s = &wire.Session{ID: id, Kind: c.kind, Generation: 1, Created: now, HardDeadline: hard, IdleTimeout: c.life.idle, HardTimeout: c.life.hard}
	}
	more, err := ops(s)
	if err != nil {
		writeOpError(w, err)
		return nil, false
	}
	d.Ops = append(d.Ops, more...)
	next, err := wire.Apply(o.sessions[id], &d, &wire.DefaultLimits)
	if err != nil {
		writeWireError(w, err)
		return nil, false
	}
	o.sessions[id] = next
	return next.Clone(), true
}

// opError is an error answer an ops function chose.
type opError struct {
	status      int
	code, field string
	msg         string
	current     uint64
}

func (e *opError) Error() string { return e.msg }

func writeOpError(w http.ResponseWriter, err error) {
	if oe, ok := err.(*opError); ok {
		writeError(w, oe.status, oe.code, oe.msg, oe.field, oe.current)
		return
	}
	writeWireError(w, err)
}

// checkToken checks the session token an app sent in X-Session-Token (none:
// nothing to check), as the origin does: valid, unexpired (idle expiry is
// accepted on logout), for id, of the session's generation and kind. It
// answers the error itself and reports whether to go on. o.mu is held.
func (o *FakeOrigin) checkToken(w http.ResponseWriter, id wire.ID, s *wire.Session, token string, logout bool) bool {
	if token == "" {
		return true
	}
	var c wire.Claims
	err := o.cfg.Keyring.VerifyToken([]byte(token), o.cfg.Now().Unix(), &c)
	switch {
	case err == wire.ErrTokenIdleExpired && logout:
	case err == wire.ErrTokenIdleExpired || err == wire.ErrTokenHardExpired:
		writeError(w, http.StatusUnauthorized, "token_expired", "the session token has expired", "X-Session-Token", 0)
		return false
	case err != nil:
		writeError(w, http.StatusUnauthorized, "invalid_token", "the session token does not verify", "X-Session-Token", 0)
		return false
	}
	if c.ID != id {
		writeError(w, http.StatusForbidden, "token_mismatch", "the session token is for another session", "X-Session-Token", 0)
		return false
	}
	if s != nil && s.Ended == 0 && (c.Generation != s.Generation || c.Kind != s.Kind) {
		writeError(w, http.StatusConflict, "stale_generation", "the session token is of another generation", "", uint64(s.Generation))
		return false
	}
	return true
}

// idHandler serves a route of one session, /v1/sessions/{id}...
type idHandler func(w http.ResponseWriter, r *http.Request, id wire.ID)

// session adapts h to the mux; a malformed {id} is answered 400.
func (o *FakeOrigin) session(h idHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if id, ok := o.pathID(w, r); ok {
			h(w, r, id)
		}
	}
}

// write applies ops to the session with id as apply does, with the
// request's If-Match and X-Session-Token, and answers the session.
func (o *FakeOrigin) write(w http.ResponseWriter, r *http.Request, id wire.ID, c create, ops func(s *wire.Session) ([]wire.Op, error)) {
	if s, ok := o.apply(w, id, c, r.Header.Get("If-Match"), token(r), ops); ok {
		o.writeSession(w, r, http.StatusOK, s)
	}
}

func (o *FakeOrigin) pathID(w http.ResponseWriter, r *http.Request) (wire.ID, bool) {
	id, err := wire.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", err.Error(), "id", 0)
		return id, false
	}
	return id, true
}

// upsert says what a write does with an unknown id: with ?upsert=true it
// creates an anonymous session with the query's lifetime and what
// X-Session-Init says the edge applied to it.
func upsert(w http.ResponseWriter, r *http.Request) (create, bool) {
	if r.URL.Query().Get("upsert") != "true" {
		return create{}, true
	}
	l, err := queryLifetime(r)
	if err != nil {
		writeWireError(w, err)
		return create{}, false
	}
	c := create{kind: wire.KindAnonymous, life: l}
	if h := r.Header.Get("X-Session-Init"); h != "" {
		id, _ := wire.ParseID(r.PathValue("id"))
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "="))
		var ts []wire.Touch
		if err == nil {
			ts, err = wire.DecodeTouchesLimits(b, nil, &wire.DefaultLimits)
		}
		if err != nil || len(ts) != 1 || ts[0].ID != id {
			writeError(w, http.StatusBadRequest, "invalid_input", "not a touch report of this one session", "X-Session-Init", 0)
			return create{}, false
		}
		c.init = initOps(&ts[0])
	}
	return c, true
}

// initOps are the ops of an edge's report that the origin applies when the
// report creates a session: the site defaults, public attributes and the
// device.
func initOps(t *wire.Touch) []wire.Op {
	var ops []wire.Op
	for _, op := range t.Init {
		switch {
		case op.Code == wire.OpSetField && (op.Field == wire.FieldSiteCode || op.Field == wire.FieldCurrency ||
			op.Field == wire.FieldTargetLocation || op.Field == wire.FieldLocale || op.Field == wire.FieldTrackingAllowed),
			(op.Code == wire.OpSetAttr || op.Code == wire.OpDeleteAttr) && op.NS == wire.NamespacePublic:
			ops = append(ops, op)
		}
	}
	if !t.Device.IsZero() {
		ops = append(ops, wire.Op{Code: wire.OpDevice, Device: t.Device})
	}
	return ops
}

func token(r *http.Request) string { return r.Header.Get("X-Session-Token") }

// maxBody is the origin's default request body limit.
const maxBody = 256 << 10

func readObject(w http.ResponseWriter, r *http.Request) (wire.Value, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", err.Error(), "body", 0)
		return wire.Value{}, false
	}
	if len(b) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "request body over 256 KiB", "body", 0)
		return wire.Value{}, false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_input", "request body is empty; send a JSON object", "body", 0)
		return wire.Value{}, false
	}
	v, err := wire.ParseValueJSON(b)
	if err != nil || v.Type != wire.TypeMap {
		writeError(w, http.StatusBadRequest, "invalid_input", "body is not a JSON object", "body", 0)
		return wire.Value{}, false
	}
	return v, true
}

func member(obj wire.Value, key string) wire.Value {
	v, _ := obj.Map.Get(key)
	return v
}

// without returns obj without the member key.
func without(obj wire.Value, key string) wire.Value {
	if _, ok := obj.Map.Get(key); !ok {
		return obj
	}
	out := wire.Value{Type: wire.TypeMap}
	for _, a := range obj.Map {
		if a.Key != key {
			out.Map = append(out.Map, a)
		}
	}
	return out
}

func (o *FakeOrigin) create(w http.ResponseWriter, r *http.Request) {
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	kind := wire.KindAnonymous
	if k := member(body, "kind"); !k.IsZero() {
		var valid bool
		if kind, valid = wire.ParseKind(k.Text); !valid || kind == wire.KindShared {
			writeError(w, http.StatusBadRequest, "invalid_input", "kind must be anonymous or customer", "kind", 0)
			return
		}
	}
	cid := member(body, "customerId").Text
	if kind == wire.KindCustomer && cid == "" {
		writeError(w, http.StatusBadRequest, "invalid_input", "required for kind customer", "customerId", 0)
		return
	}
	life, err := bodyLifetime(body, kind)
	if err != nil {
		writeWireError(w, err)
		return
	}
	id, _ := wire.NewID()
	// Like the origin: a customer session starts anonymous and logs in
	// within the same delta, at generation 2, with the lifetime it was
	// given.
	c := create{kind: wire.KindAnonymous, life: life}
	s, ok := o.apply(w, id, c, "", "", func(s *wire.Session) ([]wire.Op, error) {
		var ops []wire.Op
		if cid != "" {
			login, err := o.loginOps(s, cid, life, true)
			if err != nil {
				return nil, err
			}
			ops = append(ops, login...)
		}
		ctx := member(body, "context")
		if ctx.IsZero() {
			return ops, nil
		}
		more, err := wire.ContextOps(ctx, false, &wire.DefaultLimits)
		return append(ops, more...), err
	})
	if ok {
		o.writeToken(w, http.StatusCreated, s, true)
	}
}

// loginOps returns the ops of logging s in as customer cid with lifetime l,
// under the customer session limit (ending the oldest other sessions by
// start, as the origin does, or refusing). o.mu is held.
func (o *FakeOrigin) loginOps(s *wire.Session, cid string, l lifetime, fresh bool) ([]wire.Op, error) {
	if lim := o.cfg.CustomerSessions; lim.Max > 0 {
		var others []*wire.Session
		for _, x := range o.sessions {
			if x.Ended == 0 && x.ID != s.ID && x.CustomerID() == cid {
				others = append(others, x)
			}
		}
		if len(others) >= lim.Max {
			if lim.OnLimit == "refuse" {
				return nil, &opError{status: http.StatusConflict, code: "session_limit",
					msg: "the customer has " + strconv.Itoa(len(others)) + " sessions, the most allowed"}
			}
			slices.SortFunc(others, func(a, b *wire.Session) int {
				return cmp.Or(cmp.Compare(a.Created, b.Created), bytes.Compare(a.ID[:], b.ID[:]))
			})
			for _, x := range others[:len(others)-lim.Max+1] {
				o.endLocked(x.ID, wire.EndEvicted)
			}
		}
	}
	// The logged-in session's lifetime is the one the login gives (none:
	// the customer timeouts). Hard deadlines are absolute: a login can
	// bring the end closer, never move it later.
	now := o.cfg.Now().UnixMilli()
	idle, hardTimeout := timeouts(wire.KindCustomer, l)
	hard := after(now, hardTimeout)
	if s.HardDeadline != 0 && (hard == 0 || s.HardDeadline < hard) {
		hard = s.HardDeadline
	}
	ops := []wire.Op{{Code: wire.OpLogin, CustomerID: cid, Generation: s.Generation + 1, Idle: capAt(after(now, idle), hard), Hard: hard}}
	if !fresh && (s.IdleTimeout != l.idle || s.HardTimeout != l.hard) {
		ops = append(ops, wire.Op{Code: wire.OpLifetime, Idle: l.idle, Hard: l.hard})
	}
	return ops, nil
}

// endLocked ends the session with id for reason. o.mu is held.
func (o *FakeOrigin) endLocked(id wire.ID, reason wire.EndReason) {
	s := o.sessions[id]
	if s == nil || s.Ended != 0 {
		return
	}
	d := wire.Delta{ID: id, BaseVersion: s.Version, Version: s.Version + 1, At: o.cfg.Now().UnixMilli(),
		Ops: []wire.Op{{Code: wire.OpEnd, Reason: reason}}}
	if next, err := wire.Apply(s, &d, &wire.DefaultLimits); err == nil {
		o.sessions[id] = next
	}
}

func (o *FakeOrigin) get(w http.ResponseWriter, r *http.Request, id wire.ID) {
	s, ok := o.read(w, r, id)
	if !ok {
		return
	}
	if items := r.URL.Query().Get("items"); items != "" {
		var err error
		if s, err = selectItems(s, items); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_input", err.Error(), "items", 0)
			return
		}
	}
	o.writeSession(w, r, http.StatusOK, s)
}

// read returns the session with id for a read, its token (if the request
// sends one) checked; it answers the error itself (404 for an unknown id,
// 410 for an ended session) and reports whether to go on.
func (o *FakeOrigin) read(w http.ResponseWriter, r *http.Request, id wire.ID) (*wire.Session, bool) {
	o.mu.Lock()
	s := o.sessions[id]
	ok := o.checkToken(w, id, s, token(r), false)
	o.mu.Unlock()
	if ok && !present(w, id, s) {
		return nil, false
	}
	return s, ok
}

// present answers 404 for an unknown session and 410 for an ended one, and
// reports whether s is neither.
func present(w http.ResponseWriter, id wire.ID, s *wire.Session) bool {
	switch {
	case s == nil:
		writeError(w, http.StatusNotFound, "not_found", "no session "+id.String(), "", 0)
		return false
	case s.Ended != 0:
		writeError(w, http.StatusGone, "gone", "session ended: "+s.Ended.String(), "", 0)
		return false
	}
	return true
}

// selectItems returns a copy of s holding only the listed items: a
// well-known field by name, a "namespace.key" attribute, or a whole
// namespace, as the origin does.
func selectItems(s *wire.Session, items string) (*wire.Session, error) {
	out := s.Clone()
	out.Fields = [wire.NumFields]wire.Value{}
	out.Attrs = [wire.NumNamespaces]wire.Attrs{}
	for _, it := range strings.Split(items, ",") {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		if f, ok := wire.ParseField(it); ok {
			out.Fields[f] = s.Fields[f]
			continue
		}
		nsName, key, hasKey := strings.Cut(it, ".")
		ns, ok := wire.ParseNamespace(nsName)
		if !ok {
			return nil, errors.New("unknown item " + strconv.Quote(it))
		}
		if !hasKey {
			out.Attrs[ns] = s.Attrs[ns]
		} else if v, ok := s.Attr(ns, key); ok {
			out.Attrs[ns] = out.Attrs[ns].With(key, v)
		}
	}
	return out, nil
}

func (o *FakeOrigin) context(replace bool) idHandler {
	return func(w http.ResponseWriter, r *http.Request, id wire.ID) {
		body, ok := readObject(w, r)
		if !ok {
			return
		}
		c, ok := upsert(w, r)
		if !ok {
			return
		}
		o.write(w, r, id, c, func(*wire.Session) ([]wire.Op, error) {
			return wire.ContextOps(body, replace, &wire.DefaultLimits)
		})
	}
}

func (o *FakeOrigin) setAttr(w http.ResponseWriter, r *http.Request, id wire.ID) {
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	o.writeAttr(w, r, id, member(body, "namespace").Text, func(ns wire.Namespace) wire.Op {
		return wire.Op{Code: wire.OpSetAttr, NS: ns, Key: member(body, "key").Text, Value: member(body, "value")}
	})
}

func (o *FakeOrigin) deleteAttr(w http.ResponseWriter, r *http.Request, id wire.ID) {
	o.writeAttr(w, r, id, r.PathValue("ns"), func(ns wire.Namespace) wire.Op {
		return wire.Op{Code: wire.OpDeleteAttr, NS: ns, Key: r.PathValue("key")}
	})
}

// writeAttr writes the attribute op of setAttr or deleteAttr in the
// namespace named nsName.
func (o *FakeOrigin) writeAttr(w http.ResponseWriter, r *http.Request, id wire.ID, nsName string, op func(wire.Namespace) wire.Op) {
	ns, valid := wire.ParseNamespace(nsName)
	if !valid {
		writeError(w, http.StatusBadRequest, "invalid_input", "unknown namespace", "namespace", 0)
		return
	}
	c, ok := upsert(w, r)
	if !ok {
		return
	}
	o.write(w, r, id, c, func(*wire.Session) ([]wire.Op, error) {
		return []wire.Op{op(ns)}, nil
	})
}

func (o *FakeOrigin) clearData(w http.ResponseWriter, r *http.Request, id wire.ID) {
	// Like the origin: every namespace is cleared, the fields stay.
	o.write(w, r, id, create{}, func(*wire.Session) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpClearNamespace, NS: wire.NamespaceCustom},
			{Code: wire.OpClearNamespace, NS: wire.NamespacePrivacy}, {Code: wire.OpClearNamespace, NS: wire.NamespacePublic}}, nil
	})
}

func (o *FakeOrigin) end(w http.ResponseWriter, r *http.Request, id wire.ID) {
	if _, ok := o.apply(w, id, create{}, "", token(r), func(*wire.Session) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpEnd, Reason: wire.EndAbandoned}}, nil
	}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (o *FakeOrigin) login(w http.ResponseWriter, r *http.Request, id wire.ID) {
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	cid := member(body, "customerId")
	if cid.Type != wire.TypeText || cid.Text == "" {
		writeError(w, http.StatusBadRequest, "invalid_input", "customerId is required", "customerId", 0)
		return
	}
	life, err := bodyLifetime(body, wire.KindCustomer)
	if err != nil {
		writeWireError(w, err)
		return
	}
	c, ok := upsert(w, r)
	if !ok {
		return
	}
	s, ok := o.apply(w, id, c, r.Header.Get("If-Match"), token(r), func(s *wire.Session) ([]wire.Op, error) {
		if s.Kind == wire.KindShared {
			return nil, &wire.FieldError{Field: "kind", Reason: "a shared session cannot log in", Err: wire.ErrInvalid}
		}
		ops, err := o.loginOps(s, cid.Text, life, false)
		if err != nil {
			return nil, err
		}
		if p := member(body, "profile"); !p.IsZero() {
			more, err := wire.ContextOps(p, false, &wire.DefaultLimits)
			if err != nil {
				return nil, err
			}
			ops = append(ops, more...)
		}
		return ops, nil
	})
	if ok {
		o.writeToken(w, http.StatusOK, s, false)
	}
}

func (o *FakeOrigin) logout(w http.ResponseWriter, r *http.Request, id wire.ID) {
	tok := token(r)
	if tok != "" {
		// A logout's token may be idle-expired (the edge's soft logout):
		// check it here with that allowance, not in apply.
		o.mu.Lock()
		ok := o.checkToken(w, id, o.sessions[id], tok, true)
		o.mu.Unlock()
		if !ok {
			return
		}
	}
	s, ok := o.apply(w, id, create{}, "", "", func(s *wire.Session) ([]wire.Op, error) {
		if s.Kind == wire.KindShared {
			return nil, &wire.FieldError{Field: "kind", Reason: "a shared session cannot log out", Err: wire.ErrInvalid}
		}
		if tok != "" && s.Kind != wire.KindCustomer {
			return nil, &opError{status: http.StatusConflict, code: "not_logged_in", msg: "the session is not logged in"}
		}
		// The hard deadline stays; the session's own lifetime ends with
		// the login it was given with (or its creation): the anonymous
		// timeouts apply again.
		now := o.cfg.Now().UnixMilli()
		idle, _ := timeouts(wire.KindAnonymous, lifetime{})
		ops := []wire.Op{{Code: wire.OpLogout, Generation: s.Generation + 1, Idle: capAt(after(now, idle), s.HardDeadline), Hard: s.HardDeadline}}
		if s.IdleTimeout != 0 || s.HardTimeout != 0 {
			ops = append(ops, wire.Op{Code: wire.OpLifetime})
		}
		return ops, nil
	})
	if ok {
		o.writeToken(w, http.StatusOK, s, false)
	}
}

func (o *FakeOrigin) refresh(w http.ResponseWriter, r *http.Request, id wire.ID) {
	s, ok := o.apply(w, id, create{}, "", token(r), func(s *wire.Session) ([]wire.Op, error) {
		idle, _ := timeouts(s.Kind, lifetime{idle: s.IdleTimeout})
		return []wire.Op{{Code: wire.OpTouch, Idle: capAt(after(o.cfg.Now().UnixMilli(), idle), s.HardDeadline)}}, nil
	})
	if ok {
		o.writeToken(w, http.StatusOK, s, false)
	}
}

// flush answers the session as the origin does; the fake sends no
// webhooks, so nothing else happens.
func (o *FakeOrigin) flush(w http.ResponseWriter, r *http.Request, id wire.ID) {
	if s, ok := o.read(w, r, id); ok {
		o.writeSession(w, r, http.StatusOK, s)
	}
}

// peersLocked returns the sessions of the customer that session id is
// logged in as (for an anonymous session: only itself), in the JSON of the
// origin's GET /v1/sessions/{id}/peers, or an HTTP status and error code.
// o.mu is held.
func (o *FakeOrigin) peersLocked(id wire.ID, s *wire.Session) ([]byte, int, string) {
	switch {
	case s == nil:
		return nil, http.StatusNotFound, "not_found"
	case s.Ended != 0:
		return nil, http.StatusGone, "gone"
	}
	list := []*wire.Session{s}
	if cid := s.CustomerID(); cid != "" {
		for _, x := range o.sessions {
			if x.Ended == 0 && x.ID != id && x.CustomerID() == cid {
				list = append(list, x)
			}
		}
	}
	slices.SortFunc(list[1:], func(a, b *wire.Session) int { return cmp.Compare(b.LastSeen, a.LastSeen) })
	b := []byte(`{"sessions":[`)
	for i, x := range list {
		if i > 0 {
			b = append(b, ',')
		}
		sum := sha256.Sum256(x.ID[:])
		b = append(b, `{"handle":"`...)
		b = hex.AppendEncode(b, sum[:8])
		b = append(b, `","current":`...)
		b = strconv.AppendBool(b, i == 0)
		b = append(append(append(b, `,"kind":"`...), x.Kind.String()...), '"')
		for _, t := range [...]struct {
			name string
			ms   int64
		}{{"created", x.Created}, {"lastSeen", x.LastSeen}, {"modified", x.Modified}} {
			if t.ms != 0 {
				b = wire.AppendTimeJSON(append(append(append(b, `,"`...), t.name...), `":`...), t.ms)
			}
		}
		for _, d := range [...]struct {
			name string
			dev  wire.Device
		}{{"firstDevice", x.FirstDevice}, {"device", x.Device}} {
			if !d.dev.IsZero() {
				b = append(append(append(b, `,"`...), d.name...), `":{"userAgent":`...)
				b = wire.AppendStringJSON(b, d.dev.UserAgent)
				b = wire.AppendStringJSON(append(b, `,"addr":`...), d.dev.Addr)
				b = append(wire.AppendStringJSON(append(b, `,"site":`...), d.dev.Site), '}')
			}
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), http.StatusOK, ""
}

// endPeersLocked ends every other session of the customer that session id
// is logged in as, with reason revoked, and returns how many it ended, or
// an HTTP status and error code. o.mu is held.
func (o *FakeOrigin) endPeersLocked(id wire.ID, s *wire.Session) (int, int, string) {
	switch {
	case s == nil:
		return 0, http.StatusNotFound, "not_found"
	case s.Ended != 0:
		return 0, http.StatusGone, "gone"
	}
	n := 0
	if cid := s.CustomerID(); cid != "" {
		for _, x := range o.sessions {
			if x.Ended == 0 && x.ID != id && x.CustomerID() == cid {
				o.endLocked(x.ID, wire.EndRevoked)
				n++
			}
		}
	}
	return n, http.StatusOK, ""
}

func (o *FakeOrigin) peers(w http.ResponseWriter, r *http.Request, id wire.ID) {
	o.answerLocked(w, r, id, func(s *wire.Session) ([]byte, int, string) { return o.peersLocked(id, s) })
}

func (o *FakeOrigin) endPeers(w http.ResponseWriter, r *http.Request, id wire.ID) {
	o.answerLocked(w, r, id, func(s *wire.Session) ([]byte, int, string) {
		n, status, code := o.endPeersLocked(id, s)
		return append(strconv.AppendInt([]byte(`{"revoked":`), int64(n), 10), '}'), status, code
	})
}

// answerLocked runs f on the session with id under the lock, its token (if
// the request sends one) checked, and answers the JSON f returns, or the
// HTTP status and error code.
func (o *FakeOrigin) answerLocked(w http.ResponseWriter, r *http.Request, id wire.ID, f func(s *wire.Session) ([]byte, int, string)) {
	o.mu.Lock()
	s := o.sessions[id]
	var body []byte
	status, code := 0, ""
	if o.checkToken(w, id, s, token(r), false) {
		body, status, code = f(s)
	}
	o.mu.Unlock()
	switch {
	case status == 0:
	case status != http.StatusOK:
		writeError(w, status, code, code, "", 0)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// putShared creates the shared session with the body as its initial
// context (and its member "lifetime" as the session's lifetime), or
// answers the existing one unchanged (the origin's semantics).
func (o *FakeOrigin) putShared(w http.ResponseWriter, r *http.Request) {
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	life, err := bodyLifetime(body, wire.KindShared)
	if err != nil {
		writeWireError(w, err)
		return
	}
	body = without(body, "lifetime")
	id := wire.SharedID(o.cfg.SharedSecret, r.PathValue("name"))
	o.mu.Lock()
	existing := o.sessions[id]
	o.mu.Unlock()
	if existing != nil {
		if existing.Ended != 0 {
			writeError(w, http.StatusGone, "gone", "session ended", "", 0)
			return
		}
		o.writeSession(w, r, http.StatusOK, existing)
		return
	}
	s, ok := o.apply(w, id, create{kind: wire.KindShared, life: life}, "", "", func(*wire.Session) ([]wire.Op, error) {
		return wire.ContextOps(body, false, &wire.DefaultLimits)
	})
	if ok {
		o.writeSession(w, r, http.StatusCreated, s)
	}
}

func (o *FakeOrigin) getShared(w http.ResponseWriter, r *http.Request) {
	id := wire.SharedID(o.cfg.SharedSecret, r.PathValue("name"))
	r.SetPathValue("id", id.String())
	o.get(w, r, id)
}

func (o *FakeOrigin) customer(cid string) []*wire.Session {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*wire.Session
	for _, s := range o.sessions {
		if s.Ended == 0 && s.CustomerID() == cid {
			out = append(out, s.Clone())
		}
	}
	return out
}

func (o *FakeOrigin) customerSessions(w http.ResponseWriter, r *http.Request) {
	b := []byte(`{"sessions":[`)
	for i, s := range o.customer(r.PathValue("cid")) {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendSessionJSON(b, s, wire.AllNamespaces)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, "]}"...))
}

func (o *FakeOrigin) revokeCustomer(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	n := 0
	for _, s := range o.sessions {
		if s.Ended == 0 && s.CustomerID() == r.PathValue("cid") {
			o.endLocked(s.ID, wire.EndRevoked)
			n++
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(strconv.AppendInt([]byte(`{"revoked":`), int64(n), 10), '}'))
}

// seen records that an edge forwarded a request of the session c names
// from dev, as the edge's activity reports do: last seen moves to now and
// the idle deadline with it, and a device other than the stored one is
// stored. A session the origin does not know is created as an edge mints
// it (anonymous, generation 1, the token's hard deadline) with the ops the
// edge applied to it (init).
func (o *FakeOrigin) seen(c *wire.Claims, dev wire.Device, init []wire.Op) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.cfg.Now().UnixMilli()
	s := o.sessions[c.ID]
	if s == nil {
		if c.Kind != wire.KindAnonymous || c.Generation != 1 || c.HardDeadline*1000 <= now {
			return
		}
		idle, _ := timeouts(wire.KindAnonymous, lifetime{})
		hard := c.HardDeadline * 1000
		d := wire.Delta{ID: c.ID, Version: 1, At: now, Ops: append([]wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous,
			Generation: 1, Idle: capAt(now+idle, hard), Hard: hard}}, init...)}
		if next, err := wire.Apply(nil, &d, &wire.DefaultLimits); err == nil {
			o.sessions[c.ID] = next
		}
		return
	}
	if s.Ended != 0 || s.Generation != c.Generation || s.Kind != c.Kind {
		return
	}
	idle, _ := timeouts(s.Kind, lifetime{idle: s.IdleTimeout})
	next := s.Clone()
	next.LastSeen = max(s.LastSeen, now)
	if idle != 0 {
		next.IdleDeadline = capAt(next.LastSeen+idle, s.HardDeadline)
	}
	if s.Device != dev && !dev.IsZero() {
		d := wire.Delta{ID: c.ID, BaseVersion: s.Version, Version: s.Version + 1, At: now, Ops: []wire.Op{{Code: wire.OpDevice, Device: dev}}}
		if n, err := wire.Apply(next, &d, &wire.DefaultLimits); err == nil {
			next = n
		}
	}
	o.sessions[c.ID] = next
}

// selfService applies a shopper's self-service write for the edge: ops to
// the session c names, presenting its token (so only at its generation); a
// session the origin does not know is created as the edge minted it, with
// init, when c is what an edge mints. It returns the session, or an HTTP
// status, code and message.
func (o *FakeOrigin) selfService(c *wire.Claims, ops, init []wire.Op) (*wire.Session, int, string, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.cfg.Now().UnixMilli()
	s := o.sessions[c.ID]
	switch {
	case s == nil && (c.Kind != wire.KindAnonymous || c.Generation != 1 || c.HardDeadline*1000 <= now):
		return nil, http.StatusNotFound, "not_found", "no session " + c.ID.String()
	case s != nil && s.Ended != 0:
		return nil, http.StatusGone, "gone", "session ended"
	case s != nil && (s.Generation != c.Generation || s.Kind != c.Kind):
		return nil, http.StatusConflict, "stale_generation", "the session token is of another generation"
	}
	var d wire.Delta
	if s == nil {
		idle, _ := timeouts(wire.KindAnonymous, lifetime{})
		hard := c.HardDeadline * 1000
		d = wire.Delta{ID: c.ID, Version: 1, At: now, Ops: append([]wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous,
			Generation: 1, Idle: capAt(now+idle, hard), Hard: hard}}, init...)}
	} else {
		d = wire.Delta{ID: c.ID, BaseVersion: s.Version, Version: s.Version + 1, At: now}
	}
	d.Ops = append(d.Ops, ops...)
	next, err := wire.Apply(s, &d, &wire.DefaultLimits)
	if err != nil {
		return nil, http.StatusBadRequest, "invalid_input", err.Error()
	}
	o.sessions[c.ID] = next
	return next.Clone(), http.StatusOK, "", ""
}

// selfPeers answers the edge's GET {prefix}sessions for the session c
// names; end makes it DELETE {prefix}sessions/others.
func (o *FakeOrigin) selfPeers(c *wire.Claims, end bool) ([]byte, int, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.sessions[c.ID]
	if s != nil && s.Ended == 0 && (s.Generation != c.Generation || s.Kind != c.Kind) {
		return nil, http.StatusConflict, "stale_generation"
	}
	if s == nil && c.Kind == wire.KindAnonymous && c.Generation == 1 {
		// A session the edge minted and the origin does not know yet: it
		// has no other sessions, and the list holds it alone.
		if end {
			return []byte(`{"revoked":0}`), http.StatusOK, ""
		}
		now := o.cfg.Now().UnixMilli()
		return o.peersLocked(c.ID, &wire.Session{ID: c.ID, Kind: wire.KindAnonymous, Generation: 1, Created: now, LastSeen: now})
	}
	if end {
		n, status, code := o.endPeersLocked(c.ID, s)
		return append(strconv.AppendInt([]byte(`{"revoked":`), int64(n), 10), '}'), status, code
	}
	return o.peersLocked(c.ID, s)
}
