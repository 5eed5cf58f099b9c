// Package sdktest helps test apps that use sessionedge: FakeOrigin is an
// in-memory stand-in for the origin API, FakeEdge plays the edge in front of
// an app, and Forward sets the headers the edge forwards on a request, so an
// app's handlers can be tested without any sessionedge process.
package sdktest

import (
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
}

// FakeOrigin is an in-memory origin API served by an httptest.Server on
// loopback. It implements the routes of /v1 an app calls (sessions, shared
// sessions, customers) with the origin's semantics (upsert, If-Match,
// generations, absolute hard deadlines, tombstones, typed errors, scopes,
// ?items=); it has no expiry, no webhooks and none of the edge's routes
// (the change feed, activity reports), and keeps everything in memory.
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
	mux.HandleFunc("GET /v1/sessions/{id}", o.get)
	mux.HandleFunc("PUT /v1/sessions/{id}/context", o.context(true))
	mux.HandleFunc("PATCH /v1/sessions/{id}/context", o.context(false))
	mux.HandleFunc("POST /v1/sessions/{id}/attributes", o.setAttr)
	mux.HandleFunc("DELETE /v1/sessions/{id}/attributes/{ns}/{key}", o.deleteAttr)
	mux.HandleFunc("DELETE /v1/sessions/{id}/data", o.clearData)
	mux.HandleFunc("DELETE /v1/sessions/{id}", o.end)
	mux.HandleFunc("POST /v1/sessions/{id}/login", o.login)
	mux.HandleFunc("POST /v1/sessions/{id}/logout", o.logout)
	mux.HandleFunc("POST /v1/sessions/{id}/refresh", o.refresh)
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

// deadlines returns the idle and hard deadlines of a kind from now, with the
// origin's default timeouts.
func (o *FakeOrigin) deadlines(k wire.Kind) (idle, hard int64) {
	now := o.cfg.Now()
	switch k {
	case wire.KindAnonymous:
		return now.Add(time.Hour).UnixMilli(), now.Add(24 * time.Hour).UnixMilli()
	case wire.KindCustomer:
		return now.Add(30 * time.Minute).UnixMilli(), now.Add(customerHard).UnixMilli()
	}
	return 0, 0
}

// customerHard is the origin's default hard timeout of customer sessions.
const customerHard = 6 * time.Hour

// apply applies ops to the session with id under the lock. create makes an
// unknown id a new session of kind (0: answer 404). ifMatch, when non-empty,
// must name the current version.
func (o *FakeOrigin) apply(w http.ResponseWriter, id wire.ID, create wire.Kind, ifMatch string, ops func(s *wire.Session) ([]wire.Op, error)) (*wire.Session, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.sessions[id]
	if s != nil && s.Ended != 0 {
		writeError(w, http.StatusGone, "gone", "session ended: "+s.Ended.String(), "", 0)
		return nil, false
	}
	if s == nil && create == 0 {
		writeError(w, http.StatusNotFound, "not_found", "no session "+id.String(), "", 0)
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
	d := wire.Delta{ID: id, BaseVersion: base, Version: base + 1, At: o.cfg.Now().UnixMilli()}
	if s == nil {
		idle, hard := o.deadlines(create)
		d.Ops = append(d.Ops, wire.Op{Code: wire.OpStart, Kind: create, Generation: 1, Idle: idle, Hard: hard})
		s = &wire.Session{ID: id, Kind: create, Generation: 1}
	}
	more, err := ops(s)
	if err != nil {
		writeWireError(w, err)
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

func (o *FakeOrigin) pathID(w http.ResponseWriter, r *http.Request) (wire.ID, bool) {
	id, err := wire.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", err.Error(), "id", 0)
		return id, false
	}
	return id, true
}

func upsertKind(r *http.Request) wire.Kind {
	if r.URL.Query().Get("upsert") == "true" {
		return wire.KindAnonymous
	}
	return 0
}

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
	id, _ := wire.NewID()
	// Like the origin: a customer session starts anonymous and logs in
	// within the same delta, at generation 2.
	s, ok := o.apply(w, id, wire.KindAnonymous, "", func(*wire.Session) ([]wire.Op, error) {
		var ops []wire.Op
		if cid != "" {
			idle, hard := o.deadlines(wire.KindCustomer)
			ops = append(ops, wire.Op{Code: wire.OpLogin, CustomerID: cid, Generation: 2, Idle: idle, Hard: hard})
		}
		c := member(body, "context")
		if c.IsZero() {
			return ops, nil
		}
		more, err := wire.ContextOps(c, false, &wire.DefaultLimits)
		return append(ops, more...), err
	})
	if ok {
		o.writeToken(w, http.StatusCreated, s, true)
	}
}

func (o *FakeOrigin) get(w http.ResponseWriter, r *http.Request) {
	id, ok := o.pathID(w, r)
	if !ok {
		return
	}
	o.mu.Lock()
	s := o.sessions[id]
	o.mu.Unlock()
	switch {
	case s == nil:
		writeError(w, http.StatusNotFound, "not_found", "no session "+id.String(), "", 0)
	case s.Ended != 0:
		writeError(w, http.StatusGone, "gone", "session ended: "+s.Ended.String(), "", 0)
	default:
		if items := r.URL.Query().Get("items"); items != "" {
			var err error
			if s, err = selectItems(s, items); err != nil {
				writeError(w, http.StatusBadRequest, "invalid_input", err.Error(), "items", 0)
				return
			}
		}
		o.writeSession(w, r, http.StatusOK, s)
	}
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

func (o *FakeOrigin) context(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := o.pathID(w, r)
		if !ok {
			return
		}
		body, ok := readObject(w, r)
		if !ok {
			return
		}
		s, ok := o.apply(w, id, upsertKind(r), r.Header.Get("If-Match"), func(*wire.Session) ([]wire.Op, error) {
			return wire.ContextOps(body, replace, &wire.DefaultLimits)
		})
		if ok {
			o.writeSession(w, r, http.StatusOK, s)
		}
	}
}

func (o *FakeOrigin) setAttr(w http.ResponseWriter, r *http.Request) {
	id, ok := o.pathID(w, r)
	if !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	ns, valid := wire.ParseNamespace(member(body, "namespace").Text)
	if !valid {
		writeError(w, http.StatusBadRequest, "invalid_input", "unknown namespace", "namespace", 0)
		return
	}
	key := member(body, "key").Text
	s, ok := o.apply(w, id, upsertKind(r), r.Header.Get("If-Match"), func(*wire.Session) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpSetAttr, NS: ns, Key: key, Value: member(body, "value")}}, nil
	})
	if ok {
		o.writeSession(w, r, http.StatusOK, s)
	}
}

func (o *FakeOrigin) deleteAttr(w http.ResponseWriter, r *http.Request) {
	id, ok := o.pathID(w, r)
	if !ok {
		return
	}
	ns, valid := wire.ParseNamespace(r.PathValue("ns"))
	if !valid {
		writeError(w, http.StatusBadRequest, "invalid_input", "unknown namespace", "namespace", 0)
		return
	}
	s, ok := o.apply(w, id, upsertKind(r), r.Header.Get("If-Match"), func(*wire.Session) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpDeleteAttr, NS: ns, Key: r.PathValue("key")}}, nil
	})
	if ok {
		o.writeSession(w, r, http.StatusOK, s)
	}
}

func (o *FakeOrigin) clearData(w http.ResponseWriter, r *http.Request) {
	id, ok := o.pathID(w, r)
	if !ok {
		return
	}
	// Like the origin: every namespace is cleared, the fields stay.
	s, ok := o.apply(w, id, 0, r.Header.Get("If-Match"), func(*wire.Session) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpClearNamespace, NS: wire.NamespaceCustom},
			{Code: wire.OpClearNamespace, NS: wire.NamespacePrivacy}, {Code: wire.OpClearNamespace, NS: wire.NamespacePublic}}, nil
	})
	if ok {
		o.writeSession(w, r, http.StatusOK, s)
	}
}

func (o *FakeOrigin) end(w http.ResponseWriter, r *http.Request) {
	id, ok := o.pathID(w, r)
	if !ok {
		return
	}
	if _, ok := o.apply(w, id, 0, "", func(*wire.Session) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpEnd, Reason: wire.EndAbandoned}}, nil
	}); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (o *FakeOrigin) login(w http.ResponseWriter, r *http.Request) {
	id, ok := o.pathID(w, r)
	if !ok {
		return
	}
	body, ok := readObject(w, r)
	if !ok {
		return
	}
	cid := member(body, "customerId")
	if cid.Type != wire.TypeText || cid.Text == "" {
		writeError(w, http.StatusBadRequest, "invalid_input", "customerId is required", "customerId", 0)
		return
	}
	s, ok := o.apply(w, id, upsertKind(r), "", func(s *wire.Session) ([]wire.Op, error) {
		// Hard deadlines are absolute: a login can bring the end closer
		// (the customer timeout counted from the session's start), never
		// move it later.
		idle, _ := o.deadlines(wire.KindCustomer)
		created := s.Created
		if created == 0 {
			created = o.cfg.Now().UnixMilli()
		}
		hard := created + customerHard.Milliseconds()
		ops := []wire.Op{{Code: wire.OpLogin, CustomerID: cid.Text, Generation: s.Generation + 1, Idle: idle, Hard: hard}}
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

func (o *FakeOrigin) logout(w http.ResponseWriter, r *http.Request) {
	id, ok := o.pathID(w, r)
	if !ok {
		return
	}
	s, ok := o.apply(w, id, 0, "", func(s *wire.Session) ([]wire.Op, error) {
		// The hard deadline stays (Hard 0 keeps the current one).
		idle, _ := o.deadlines(wire.KindAnonymous)
		return []wire.Op{{Code: wire.OpLogout, Generation: s.Generation + 1, Idle: idle}}, nil
	})
	if ok {
		o.writeToken(w, http.StatusOK, s, false)
	}
}

func (o *FakeOrigin) refresh(w http.ResponseWriter, r *http.Request) {
	id, ok := o.pathID(w, r)
	if !ok {
		return
	}
	s, ok := o.apply(w, id, 0, "", func(s *wire.Session) ([]wire.Op, error) {
		idle, _ := o.deadlines(s.Kind)
		return []wire.Op{{Code: wire.OpTouch, Idle: idle}}, nil
	})
	if ok {
		o.writeToken(w, http.StatusOK, s, false)
	}
}

// putShared creates the shared session with the body as its initial
// context, or answers the existing one unchanged (the origin's semantics).
func (o *FakeOrigin) putShared(w http.ResponseWriter, r *http.Request) {
	body, ok := readObject(w, r)
	if !ok {
		return
	}
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
	s, ok := o.apply(w, id, wire.KindShared, "", func(*wire.Session) ([]wire.Op, error) {
		return wire.ContextOps(body, false, &wire.DefaultLimits)
	})
	if ok {
		o.writeSession(w, r, http.StatusCreated, s)
	}
}

func (o *FakeOrigin) getShared(w http.ResponseWriter, r *http.Request) {
	r.SetPathValue("id", wire.SharedID(o.cfg.SharedSecret, r.PathValue("name")).String())
	o.get(w, r)
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
	for _, s := range o.customer(r.PathValue("cid")) {
		o.apply(httptest.NewRecorder(), s.ID, 0, "", func(*wire.Session) ([]wire.Op, error) {
			return []wire.Op{{Code: wire.OpEnd, Reason: wire.EndRevoked}}, nil
		})
	}
	w.WriteHeader(http.StatusNoContent)
}
