package server

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func wantsCBOR(ctx *fasthttp.RequestCtx) bool {
	return bytes.Contains(ctx.Request.Header.Peek("Accept"), []byte("application/cbor"))
}

func isCBORBody(ctx *fasthttp.RequestCtx) bool {
	return bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("application/cbor"))
}

func (s *Server) parseID(p params) (wire.ID, error) {
	id, err := wire.ParseIDBytes(p.v[0])
	if err != nil {
		return id, store.ErrNotFound
	}
	return id, nil
}

// writeSession answers with the session, showing only the namespaces a
// allows, in the negotiated format and its version as ETag. On a cache hit
// it allocates nothing: the encoding goes into a pooled buffer that fasthttp
// copies into its own reused body.
func (s *Server) writeSession(ctx *fasthttp.RequestCtx, sess *wire.Session, status int, a access) {
	sess = a.view(sess)
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	setETag(ctx, sess.Version)
	if wantsCBOR(ctx) {
		ctx.SetContentType("application/cbor")
		b = wire.AppendSessionView(b, sess, a.namespaces)
	} else {
		ctx.SetContentType("application/json")
		b = wire.AppendSessionJSON(b, sess, a.namespaces)
	}
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
	*bp = b
	bufPool.Put(bp)
}

// setETag sets the version as a quoted ETag without allocating.
func setETag(ctx *fasthttp.RequestCtx, version uint64) {
	var etag [24]byte
	e := append(etag[:0], '"')
	e = strconv.AppendUint(e, version, 10)
	e = append(e, '"')
	ctx.Response.Header.SetBytesV("ETag", e)
}

// writeTokenSession answers login, logout and create: {"token","session"}
// in JSON; in CBOR the session is the body and the token the
// X-Session-Token header.
func (s *Server) writeTokenSession(ctx *fasthttp.RequestCtx, sess *wire.Session, status int, withID bool, a access) {
	tok := s.token(sess)
	if wantsCBOR(ctx) {
		ctx.Response.Header.Set("X-Session-Token", tok)
		s.writeSession(ctx, sess, status, a)
		return
	}
	b := append(make([]byte, 0, 1024), '{')
	if withID {
		b = append(sess.ID.AppendText(append(b, `"id":"`...)), `",`...)
	}
	b = append(append(append(b, `"token":"`...), tok...), `","session":`...)
	b = append(wire.AppendSessionJSON(b, a.view(sess), a.namespaces), '}')
	ctx.Response.Header.Set("ETag", `"`+strconv.FormatUint(sess.Version, 10)+`"`)
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}

// token mints a token for sess (token times are Unix seconds). It carries
// the session's hard deadline; a shared session's token at most
// timeouts.shared.tokenLifetime from now.
func (s *Server) token(sess *wire.Session) string {
	now := s.nowMS()
	hard := sess.HardDeadline
	if sess.Kind == wire.KindShared {
		hard = minDeadline(hard, deadlineAfter(s.sharedTokenLife, now))
	}
	c := wire.Claims{Kind: sess.Kind, ID: sess.ID, Generation: sess.Generation, IssuedAt: now / 1000,
		IdleDeadline: sess.IdleDeadline / 1000, HardDeadline: tokenSeconds(hard)}
	return string(s.keyring.AppendToken(nil, &c))
}

// tokenSeconds converts a Unix-ms deadline to token seconds, rounding down so
// a token never outlives its session (0 stays "none").
func tokenSeconds(ms int64) int64 { return ms / 1000 }

// minDeadline returns the earlier of two deadlines, 0 meaning none.
func minDeadline(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// capIdle caps an idle deadline at the hard deadline (0 = none on either
// side).
func capIdle(idle, hard int64) int64 {
	if idle != 0 && hard != 0 && idle > hard {
		return hard
	}
	return idle
}

// pathToken parses the session id in the path (parseID) and reads the
// token the request presents for it (sessionToken).
func (s *Server) pathToken(ctx *fasthttp.RequestCtx, p params, a access, idleOK bool) (wire.ID, *wire.Claims, error) {
	id, err := s.parseID(p)
	if err != nil {
		return id, nil, err
	}
	tok, err := s.sessionToken(ctx, id, a, idleOK)
	return id, tok, err
}

// sessionToken reads the X-Session-Token request header: nil without one
// (errTokenRequired when a requires it), else the verified claims, which
// must name session id. An idle-expired token is accepted only with idleOK
// (logout: the edge's soft logout presents it).
func (s *Server) sessionToken(ctx *fasthttp.RequestCtx, id wire.ID, a access, idleOK bool) (*wire.Claims, error) {
	h := ctx.Request.Header.Peek("X-Session-Token")
	if len(h) == 0 {
		if a.edge {
			return nil, errTokenRequired
		}
		return nil, nil
	}
	c := new(wire.Claims)
	err := s.keyring.VerifyToken(h, s.now().Unix(), c)
	switch {
	case err == nil, errors.Is(err, wire.ErrTokenIdleExpired) && idleOK:
	case errors.Is(err, wire.ErrTokenIdleExpired), errors.Is(err, wire.ErrTokenHardExpired):
		return nil, errTokenExpired
	default:
		return nil, errInvalidToken
	}
	if c.ID != id {
		return nil, errTokenMismatch
	}
	return c, nil
}

// checkToken holds a presented token against the current session: it must
// be of the session's generation (and so kind).
func checkToken(c *wire.Claims, cur *wire.Session) error {
	if c != nil && (c.Generation != cur.Generation || c.Kind != cur.Kind) {
		return &staleGenerationError{current: cur.Generation}
	}
	return nil
}

// creatable reports why a session that is not stored may not be created
// from an edge's claim (a session token or a touch) of kind, generation and
// hard deadline (Unix ms) at now, or "" when it may: only what an edge
// mints, an anonymous session at generation 1, whose hard deadline is in
// the future and not beyond the anonymous hard timeout (plus a minute of
// clock skew). The deadline rule keeps an old token from bringing back an
// id whose tombstone was purged: tombstones stay until the hard deadline.
func (s *Server) creatable(kind wire.Kind, gen uint32, hard, now int64) string {
	max := s.tm[wire.KindAnonymous].Hard
	switch {
	case kind != wire.KindAnonymous:
		return "not_anonymous"
	case gen != 1:
		return "not_generation_1"
	case hard == 0 && max.IsNone():
		return ""
	case hard == 0, hard <= now:
		return "hard_deadline"
	case !max.IsNone() && hard > now+max.Std().Milliseconds()+time.Minute.Milliseconds():
		return "hard_deadline"
	}
	return ""
}

// edgeStart is the start op of a session an edge minted, with hard
// deadline hard (from its token or touch); the idle deadline is the
// origin's.
func (s *Server) edgeStart(hard, now int64) wire.Op {
	idle := capIdle(deadlineAfter(s.tm[wire.KindAnonymous].Idle, now), hard)
	return wire.Op{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1, Idle: idle, Hard: hard}
}

// initOps are the ops the origin applies of an edge's report (a touch, or
// X-Session-Init) when the report creates the session: of what the edge
// applied to the session it minted, only the site defaults (setField of
// siteCode, currency, targetLocation, locale, trackingAllowed) and public
// attributes (setAttr, deleteAttr); then the client's device. Everything
// else is left out.
func initOps(t *wire.Touch) []wire.Op {
	var ops []wire.Op
	for _, op := range t.Init {
		if initAllowed(op) {
			ops = append(ops, op)
		}
	}
	if !t.Device.IsZero() {
		ops = append(ops, wire.Op{Code: wire.OpDevice, Device: t.Device})
	}
	return ops
}

func initAllowed(op wire.Op) bool {
	switch op.Code {
	case wire.OpSetField:
		switch op.Field {
		case wire.FieldSiteCode, wire.FieldCurrency, wire.FieldTargetLocation, wire.FieldLocale, wire.FieldTrackingAllowed:
			return true
		}
	case wire.OpSetAttr, wire.OpDeleteAttr:
		return op.NS == wire.NamespacePublic
	}
	return false
}

// sessionInit reads the X-Session-Init request header of a write that may
// create session id: base64url of a touch report (wire.AppendTouches)
// holding exactly that session. It returns the ops to apply if the write
// creates it (initOps), nil without the header.
func (s *Server) sessionInit(ctx *fasthttp.RequestCtx, id wire.ID) ([]wire.Op, error) {
	h := ctx.Request.Header.Peek("X-Session-Init")
	if len(h) == 0 {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(h), "="))
	if err != nil {
		return nil, badInput("X-Session-Init", "must be base64url")
	}
	ts, err := wire.DecodeTouchesLimits(b, nil, &s.lim)
	if err != nil {
		var fe *wire.FieldError
		if errors.As(err, &fe) {
			return nil, badInput("X-Session-Init", "not a touch report: "+fe.Field+": "+fe.Reason)
		}
		return nil, badInput("X-Session-Init", "not a touch report")
	}
	switch {
	case len(ts) != 1:
		return nil, badInput("X-Session-Init", "must report exactly one session")
	case ts[0].ID != id:
		return nil, badInput("X-Session-Init", "reports another session")
	}
	return initOps(&ts[0]), nil
}

// view is what a may see of sess: requests admitted by an edge scope do
// not see the devices (they are for the session's owner and the app).
func (a access) view(sess *wire.Session) *wire.Session {
	if !a.edge || (sess.FirstDevice.IsZero() && sess.Device.IsZero()) {
		return sess
	}
	v := *sess
	v.FirstDevice, v.Device = wire.Device{}, wire.Device{}
	return &v
}

// ifMatch returns the If-Match version, or -1 without the header. Weak
// tags are refused: If-Match needs strong comparison.
func ifMatch(ctx *fasthttp.RequestCtx) (int64, error) {
	h := ctx.Request.Header.Peek("If-Match")
	if len(h) == 0 {
		return -1, nil
	}
	h = bytes.TrimSpace(h)
	if bytes.HasPrefix(h, []byte("W/")) {
		return 0, badInput("If-Match", "weak tags are not allowed: send the version as a strong tag (\"5\")")
	}
	if len(h) >= 2 && h[0] == '"' && h[len(h)-1] == '"' {
		h = h[1 : len(h)-1]
	}
	v, err := strconv.ParseUint(string(h), 10, 63)
	if err != nil {
		return 0, badInput("If-Match", "must be a version number")
	}
	return int64(v), nil
}

func upsert(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.QueryArgs().Peek("upsert")) == "true"
}

// change is one write to a session.
type change struct {
	id      wire.ID
	ifMatch int64 // -1: none
	// upsert creates an unknown id as anonymous: with the origin's
	// timeouts, or with a token, only as the session the token describes
	// (see creatable).
	upsert bool
	// token, when set, must be of the session's generation in every
	// attempt.
	token *wire.Claims
	// life is the lifetime of a session upsert creates (?idleTimeout,
	// ?hardTimeout; with a token, the hard deadline stays the token's).
	life lifetime
	// init are ops applied after the start when upsert creates the
	// session (site defaults and the device from X-Session-Init).
	init []wire.Op
	// ops returns the ops to apply to base (the current session, or the
	// session upsert is creating).
	ops func(base *wire.Session, now int64) ([]wire.Op, error)
}

// write applies a change as one delta: read, apply, compare-and-set, retry
// on conflict (only without If-Match). It returns the state before (nil
// when created) and after.
func (s *Server) write(c change) (prev, next *wire.Session, err error) {
	mu := s.sessionLock(c.id)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; attempt < 100; attempt++ {
		cur, err := s.st.Get(s.base, c.id)
		now := s.nowMS()
		var ops []wire.Op
		base := cur
		switch {
		case errors.Is(err, store.ErrNotFound):
			if !c.upsert {
				return nil, nil, err
			}
			cur = nil
			ops = s.startOps(wire.KindAnonymous, 1, now, c.life)
			if t := c.token; t != nil {
				hard := t.HardDeadline * 1000
				if s.creatable(t.Kind, t.Generation, hard, now) != "" {
					return nil, nil, err
				}
				start := s.edgeStart(hard, now)
				if c.life.idle != 0 {
					start.Idle = capIdle(deadlineAfter(c.life.idle, now), hard)
				}
				ops = []wire.Op{start}
				if c.life != (lifetime{}) {
					ops = append(ops, lifetimeOp(c.life))
				}
			}
			ops = append(ops, c.init...)
			if base, err = wire.Apply(nil, &wire.Delta{ID: c.id, Version: 1, At: now, Ops: ops}, &s.lim); err != nil {
				return nil, nil, err
			}
		case err != nil:
			return nil, nil, err
		case cur.Ended != 0:
			return nil, nil, errGone
		default:
			if err := checkToken(c.token, cur); err != nil {
				return nil, nil, err
			}
		}
		if c.ifMatch >= 0 && (cur == nil || cur.Version != uint64(c.ifMatch)) {
			var v uint64
			if cur != nil {
				v = cur.Version
			}
			return nil, nil, &preconditionError{current: v}
		}
		more, err := c.ops(base, now)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, more...)
		if len(ops) == 0 {
			return cur, cur, nil
		}
		d := &wire.Delta{ID: c.id, At: now, Ops: ops}
		if cur != nil {
			d.BaseVersion = cur.Version
		}
		d.Version = d.BaseVersion + 1
		if next, err = wire.Apply(cur, d, &s.lim); err != nil {
			return nil, nil, err
		}
		err = s.commit(cur, next, d)
		if errors.Is(err, store.ErrConflict) {
			if c.ifMatch >= 0 {
				now, gerr := s.st.Get(s.base, c.id)
				if gerr != nil {
					return nil, nil, gerr
				}
				return nil, nil, &preconditionError{current: now.Version}
			}
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return cur, next, nil
	}
	return nil, nil, errTooManyRetries
}

// commit writes one delta with the webhook events it causes.
func (s *Server) commit(prev, next *wire.Session, d *wire.Delta) error {
	start := s.now()
	c := &store.Commit{Delta: d, Session: next, Prev: prev}
	s.events(c, prev, next, d)
	err := s.st.Commit(s.base, c)
	s.metrics.storeCommit.Observe(s.now().Sub(start).Seconds())
	return err
}

// read returns the stored session id; with minVersion > 0 never a cached
// copy older than minVersion (the store reads its backend then; a backend
// that is older answers what it has).
func (s *Server) read(id wire.ID, minVersion uint64) (*wire.Session, error) {
	if minVersion > 0 {
		return s.st.GetAtLeast(s.base, id, minVersion)
	}
	return s.st.Get(s.base, id)
}

// readFor reads the session as read does, for a request that presented
// tok (nil: none): the session must not have ended (errGone) and must
// match tok (checkToken).
func (s *Server) readFor(id wire.ID, minVersion uint64, tok *wire.Claims) (*wire.Session, error) {
	sess, err := s.read(id, minVersion)
	if err != nil {
		return nil, err
	}
	return sess, checkLive(tok, sess)
}

// checkLive is checkToken for a session that must not have ended.
func checkLive(tok *wire.Claims, sess *wire.Session) error {
	if sess.Ended != 0 {
		return errGone
	}
	return checkToken(tok, sess)
}

func (s *Server) handleGet(ctx *fasthttp.RequestCtx, p params, a access) error {
	id, tok, err := s.pathToken(ctx, p, a, false)
	if err != nil {
		return err
	}
	minVersion, _, err := queryUint(ctx, "minVersion")
	if err != nil {
		return err
	}
	items := ctx.QueryArgs().Peek("items")
	if cg, ok := s.st.(store.CBORGetter); ok && len(items) == 0 && !a.edge && wantsCBOR(ctx) {
		var sess *wire.Session
		var enc []byte
		if minVersion > 0 {
			sess, enc, err = cg.GetCBORAtLeast(s.base, id, minVersion)
		} else {
			sess, enc, err = cg.GetCBOR(s.base, id)
		}
		if err != nil {
			return err
		}
		if err := checkLive(tok, sess); err != nil {
			return err
		}
		setETag(ctx, sess.Version)
		ctx.SetContentType("application/cbor")
		ctx.SetBody(enc)
		return nil
	}
	sess, err := s.readFor(id, minVersion, tok)
	if err != nil {
		return err
	}
	if len(items) > 0 {
		if sess, err = selectItems(sess, string(items)); err != nil {
			return err
		}
	}
	s.writeSession(ctx, sess, fasthttp.StatusOK, a)
	return nil
}

// selectItems returns a copy of sess holding only the listed well-known
// fields and namespace.key attributes; a bare namespace selects all of it.
func selectItems(sess *wire.Session, items string) (*wire.Session, error) {
	out := sess.Clone()
	out.Fields = [wire.NumFields]wire.Value{}
	out.Attrs = [wire.NumNamespaces]wire.Attrs{}
	for _, item := range strings.Split(items, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if f, ok := wire.ParseField(item); ok {
			out.Fields[f] = sess.Fields[f]
			continue
		}
		nsName, key, hasKey := strings.Cut(item, ".")
		ns, ok := wire.ParseNamespace(nsName)
		if !ok {
			return nil, badInput("items", "unknown item "+strconv.Quote(item))
		}
		if !hasKey {
			out.Attrs[ns] = sess.Attrs[ns]
			continue
		}
		if v, ok := sess.Attrs[ns].Get(key); ok {
			out.Attrs[ns] = out.Attrs[ns].With(key, v)
		}
	}
	return out, nil
}

// decodeObject parses a JSON object body. An empty body is an empty object
// on the routes whose body is optional (the router refuses empty bodies on
// the others).
func (s *Server) decodeObject(body []byte) (wire.Value, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return wire.Value{Type: wire.TypeMap}, nil
	}
	v, err := wire.ParseValueJSONLimits(body, &s.lim)
	if err != nil {
		return v, err
	}
	if v.Type != wire.TypeMap {
		return v, badInput("body", "must be a JSON object")
	}
	return v, nil
}

// inField puts a value error of a nested object under the member that
// holds it: "custom.a" of the member "context" is "context.custom.a".
func inField(member string, err error) error {
	var fe *wire.FieldError
	if errors.As(err, &fe) {
		return &wire.FieldError{Field: member + "." + fe.Field, Reason: fe.Reason, Err: fe.Err}
	}
	return err
}

// textMember returns the text member name of obj ("" when absent).
func textMember(obj wire.Value, name string) (string, error) {
	v, ok := obj.Map.Get(name)
	if !ok || v.IsZero() {
		return "", nil
	}
	if v.Type != wire.TypeText {
		return "", badInput(name, "must be a string")
	}
	return v.Text, nil
}

// contextMember returns the object member name of obj (an empty object when
// absent).
func contextMember(obj wire.Value, name string) (wire.Value, bool, error) {
	v, ok := obj.Map.Get(name)
	if !ok || v.IsZero() {
		return wire.Value{Type: wire.TypeMap}, false, nil
	}
	if v.Type != wire.TypeMap {
		return v, true, badInput(name, "must be an object")
	}
	return v, true, nil
}

// createRequest is the parsed body of POST /v1/sessions.
type createRequest struct {
	kind wire.Kind
	cid  string
	ops  []wire.Op // the context's
	life lifetime  // for the kind created
}

func (s *Server) parseCreate(body []byte) (createRequest, error) {
	var r createRequest
	obj, err := s.decodeObject(body)
	if err != nil {
		return r, err
	}
	r.kind = wire.KindAnonymous
	ks, err := textMember(obj, "kind")
	if err != nil {
		return r, err
	}
	if ks != "" {
		var ok bool
		if r.kind, ok = wire.ParseKind(ks); !ok || r.kind == wire.KindShared {
			return r, badInput("kind", "must be anonymous or customer (shared sessions: PUT /v1/shared/{name})")
		}
	}
	if r.cid, err = textMember(obj, "customerId"); err != nil {
		return r, err
	}
	if r.kind == wire.KindCustomer && r.cid == "" {
		return r, badInput("customerId", "required for kind customer")
	}
	if r.cid != "" {
		r.kind = wire.KindCustomer
	}
	if r.life, err = s.parseLifetime(obj, r.kind); err != nil {
		return r, err
	}
	ctxObj, _, err := contextMember(obj, "context")
	if err != nil {
		return r, err
	}
	r.ops, err = wire.ContextOps(ctxObj, false, &s.lim)
	return r, inField("context", err)
}

func (s *Server) handleCreate(ctx *fasthttp.RequestCtx, _ params, a access) error {
	r, err := s.parseCreate(ctx.PostBody())
	if err != nil {
		return err
	}
	id, err := wire.NewID()
	if err != nil {
		return err
	}
	if r.cid != "" {
		defer s.lockCustomer(r.cid)()
		if _, err := s.refuseOverLimit(r.cid, id); err != nil {
			return err
		}
	}
	now := s.nowMS()
	var ops []wire.Op
	if r.cid != "" {
		start := s.startOp(wire.KindAnonymous, 1, now, lifetime{})
		ops = append(ops, start, s.loginOp(r.cid, 2, start.Hard, now, r.life))
		ops = append(ops, relife(&wire.Session{}, r.life)...)
	} else {
		ops = s.startOps(wire.KindAnonymous, 1, now, r.life)
	}
	ops = append(ops, r.ops...)
	d := &wire.Delta{ID: id, Version: 1, At: now, Ops: ops}
	next, err := wire.Apply(nil, d, &s.lim)
	if err != nil {
		return err
	}
	if err := s.commit(nil, next, d); err != nil {
		return err
	}
	if r.cid != "" {
		over, err := s.overLimitAfter(r.cid)
		if err != nil {
			return err
		}
		if over {
			// A login on another node won the race: the new session ends.
			if _, err := s.endCustomerSession(id, r.cid, wire.EndEvicted); err != nil {
				return err
			}
			return errSessionLimit
		}
		s.evictOverLimit(r.cid, id)
	}
	s.writeTokenSession(ctx, next, fasthttp.StatusCreated, true, a)
	return nil
}

// writeChange runs a change for the session in the path and answers with
// the new state.
func (s *Server) writeChange(ctx *fasthttp.RequestCtx, p params, a access, ops func(*wire.Session, int64) ([]wire.Op, error)) error {
	next, err := s.pathChange(ctx, p, a, false, ops)
	if err != nil {
		return err
	}
	s.writeSession(ctx, next, fasthttp.StatusOK, a)
	return nil
}

// pathChange applies ops to the session in the path, honouring If-Match,
// ?upsert=true and the session token (X-Session-Token; required for edge
// keys, which upsert only the session their token describes).
func (s *Server) pathChange(ctx *fasthttp.RequestCtx, p params, a access, logout bool, ops func(*wire.Session, int64) ([]wire.Op, error)) (*wire.Session, error) {
	id, tok, err := s.pathToken(ctx, p, a, logout)
	if err != nil {
		return nil, err
	}
	im, err := ifMatch(ctx)
	if err != nil {
		return nil, err
	}
	up := upsert(ctx) || a.edge
	if logout && tok != nil {
		up = false
	}
	c := change{id: id, ifMatch: im, upsert: up, token: tok, ops: ops}
	if up && !logout {
		if c.life, err = s.lifetimeQuery(ctx); err != nil {
			return nil, err
		}
		if a.edge && c.life != (lifetime{}) {
			return nil, forbiddenField("idleTimeout", "a lifetime is the app's to give: edge keys cannot set one")
		}
		if c.init, err = s.sessionInit(ctx, id); err != nil {
			return nil, err
		}
	}
	_, next, err := s.write(c)
	return next, err
}

// parseContextBody parses a context body: a JSON object, or with
// Content-Type application/cbor a CBOR-encoded context value (wire.AppendValue
// of a map).
func (s *Server) parseContextBody(body []byte, cbor bool) (wire.Value, error) {
	if cbor {
		v, err := wire.DecodeValueLimits(body, &s.lim)
		if err == nil && v.Type != wire.TypeMap {
			return v, badInput("body", "must be a CBOR map")
		}
		return v, err
	}
	return s.decodeObject(body)
}

// bodyContextOps parses a context body into ops. A key admitted by an edge
// scope may write only the public namespace and its self-service fields.
func (s *Server) bodyContextOps(ctx *fasthttp.RequestCtx, a access, replace bool) ([]wire.Op, error) {
	obj, err := s.parseContextBody(ctx.PostBody(), isCBORBody(ctx))
	if err != nil {
		return nil, err
	}
	if a.edge {
		for _, m := range obj.Map {
			if m.Key == "public" {
				continue
			}
			if f, ok := wire.ParseField(m.Key); ok && f != wire.FieldCustomerID && a.fields&(1<<f) != 0 {
				continue
			}
			return nil, forbiddenField(m.Key, "this key may write only the public namespace and its self-service fields")
		}
	}
	if replace {
		// PUT keeps customerId: only login and logout change it.
		obj.Map = obj.Map.Without("customerId")
	}
	return wire.ContextOps(obj, replace, &s.lim)
}

func (s *Server) handlePutContext(ctx *fasthttp.RequestCtx, p params, a access) error {
	ops, err := s.bodyContextOps(ctx, a, true)
	if err != nil {
		return err
	}
	return s.writeChange(ctx, p, a, func(*wire.Session, int64) ([]wire.Op, error) { return ops, nil })
}

func (s *Server) handlePatchContext(ctx *fasthttp.RequestCtx, p params, a access) error {
	ops, err := s.bodyContextOps(ctx, a, false)
	if err != nil {
		return err
	}
	return s.writeChange(ctx, p, a, func(*wire.Session, int64) ([]wire.Op, error) { return ops, nil })
}

// parseAttribute parses the body of POST …/attributes.
func (s *Server) parseAttribute(body []byte) (wire.Op, error) {
	obj, err := s.decodeObject(body)
	if err != nil {
		return wire.Op{}, attributeField(body, err)
	}
	nsName, err := textMember(obj, "namespace")
	if err != nil {
		return wire.Op{}, err
	}
	ns, ok := wire.ParseNamespace(nsName)
	if !ok {
		return wire.Op{}, badInput("namespace", "must be custom, privacy or public")
	}
	key, err := textMember(obj, "key")
	if err != nil {
		return wire.Op{}, err
	}
	field := nsName + "." + key
	if err := s.lim.ValidateKey(field, key); err != nil {
		return wire.Op{}, err
	}
	v, _ := obj.Map.Get("value")
	if v.IsZero() {
		return wire.Op{}, badInput("value", "required")
	}
	if err := s.lim.ValidateValue(field, v); err != nil {
		return wire.Op{}, err
	}
	return wire.Op{Code: wire.OpSetAttr, NS: ns, Key: key, Value: v}, nil
}

// attributeField names an error in the value of an attribute body by the
// attribute ("custom.color[2]" rather than "value[2]"), as the other routes
// do; the body is parsed again, without limits, only for the names.
func attributeField(body []byte, err error) error {
	var fe *wire.FieldError
	if !errors.As(err, &fe) || (fe.Field != "value" && !strings.HasPrefix(fe.Field, "value.") && !strings.HasPrefix(fe.Field, "value[")) {
		return err
	}
	obj, perr := wire.ParseValueJSON(body)
	if perr != nil {
		return err
	}
	ns, _ := obj.Map.Get("namespace")
	key, _ := obj.Map.Get("key")
	if _, ok := wire.ParseNamespace(ns.Text); !ok || ns.Type != wire.TypeText || key.Type != wire.TypeText || key.Text == "" {
		return err
	}
	return &wire.FieldError{Field: ns.Text + "." + key.Text + fe.Field[len("value"):], Reason: fe.Reason, Err: fe.Err}
}

func (s *Server) handleAddAttr(ctx *fasthttp.RequestCtx, p params, a access) error {
	op, err := s.parseAttribute(ctx.PostBody())
	if err != nil {
		return err
	}
	return s.writeChange(ctx, p, a, func(*wire.Session, int64) ([]wire.Op, error) { return []wire.Op{op}, nil })
}

func (s *Server) handleDeleteAttr(ctx *fasthttp.RequestCtx, p params, a access) error {
	nsName, err := p.text(1)
	if err != nil {
		return err
	}
	ns, ok := wire.ParseNamespace(nsName)
	if !ok {
		return badInput("namespace", "must be custom, privacy or public")
	}
	if a.edge && ns != wire.NamespacePublic {
		return forbiddenField("namespace", "this key may delete only public attributes")
	}
	key, err := p.text(2)
	if err != nil {
		return err
	}
	op := wire.Op{Code: wire.OpDeleteAttr, NS: ns, Key: key}
	return s.writeChange(ctx, p, a, func(*wire.Session, int64) ([]wire.Op, error) { return []wire.Op{op}, nil })
}

// handleClearData empties the context (every namespace and every
// well-known field but customerId) and keeps the session, its id, kind and
// login.
func (s *Server) handleClearData(ctx *fasthttp.RequestCtx, p params, a access) error {
	ops, err := wire.ContextOps(wire.Value{Type: wire.TypeMap}, true, &s.lim)
	if err != nil {
		return err
	}
	return s.writeChange(ctx, p, a, func(*wire.Session, int64) ([]wire.Op, error) { return ops, nil })
}

func (s *Server) handleEnd(ctx *fasthttp.RequestCtx, p params, a access) error {
	return s.writeChange(ctx, p, a, func(*wire.Session, int64) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpEnd, Reason: wire.EndAbandoned}}, nil
	})
}

// loginRequest is the parsed body of POST …/login.
type loginRequest struct {
	cid  string
	ops  []wire.Op // the profile's
	life lifetime
}

func (s *Server) parseLogin(body []byte) (loginRequest, error) {
	var r loginRequest
	obj, err := s.decodeObject(body)
	if err != nil {
		return r, err
	}
	if r.cid, err = textMember(obj, "customerId"); err != nil {
		return r, err
	}
	if r.cid == "" {
		return r, badInput("customerId", "required")
	}
	if r.life, err = s.parseLifetime(obj, wire.KindCustomer); err != nil {
		return r, err
	}
	member := "profile"
	profile, ok, err := contextMember(obj, member)
	if err != nil {
		return r, err
	}
	if !ok {
		member = "context"
		if profile, _, err = contextMember(obj, member); err != nil {
			return r, err
		}
	}
	r.ops, err = wire.ContextOps(profile, false, &s.lim)
	return r, inField(member, err)
}

// handleLogin logs the session in as a customer, within the customer's
// session limit (customerSessions): a login beyond it is refused, or ends
// the customer's oldest other sessions once it succeeded.
func (s *Server) handleLogin(ctx *fasthttp.RequestCtx, p params, a access) error {
	r, err := s.parseLogin(ctx.PostBody())
	if err != nil {
		return err
	}
	id, err := s.parseID(p)
	if err != nil {
		return err
	}
	defer s.lockCustomer(r.cid)()
	counted, err := s.refuseOverLimit(r.cid, id)
	if err != nil {
		return err
	}
	next, err := s.pathChange(ctx, p, a, false, func(base *wire.Session, now int64) ([]wire.Op, error) {
		if base.Kind == wire.KindShared {
			return nil, badInput("kind", "a shared session cannot log in")
		}
		life := r.life
		if life == (lifetime{}) {
			life = ownLifetime(base) // a login without a lifetime keeps the session's
		}
		ops := []wire.Op{s.loginOp(r.cid, base.Generation+1, base.HardDeadline, now, life)}
		ops = append(ops, relife(base, life)...)
		return append(ops, r.ops...), nil
	})
	if err != nil {
		return err
	}
	if !counted {
		over, err := s.overLimitAfter(r.cid)
		if err != nil {
			return err
		}
		if over {
			// A login on another node won the race: this one is undone.
			if err := s.undoLogin(id, r.cid, next.Generation); err != nil {
				return err
			}
			return errSessionLimit
		}
	}
	s.evictOverLimit(r.cid, id)
	s.writeTokenSession(ctx, next, fasthttp.StatusOK, false, a)
	return nil
}

// handleLogout logs a session out: generation + 1, anonymous, privacy
// cleared, hard deadline unchanged. With a session token (always for edge
// keys) only a customer session at exactly the token's generation logs out;
// an idle-expired token is accepted here (the edge's soft logout).
func (s *Server) handleLogout(ctx *fasthttp.RequestCtx, p params, a access) error {
	withToken := len(ctx.Request.Header.Peek("X-Session-Token")) > 0
	return s.tokenChange(ctx, p, a, true, func(base *wire.Session, now int64) ([]wire.Op, error) {
		if base.Kind == wire.KindShared {
			return nil, badInput("kind", "a shared session cannot log out")
		}
		if withToken && base.Kind != wire.KindCustomer {
			return nil, errNotCustomer
		}
		return s.logoutOps(base, now), nil
	})
}

// handleRefresh moves the idle deadline to now plus the session's idle
// timeout (its own, else its kind's; capped at the hard deadline, which
// never moves).
func (s *Server) handleRefresh(ctx *fasthttp.RequestCtx, p params, a access) error {
	return s.tokenChange(ctx, p, a, false, func(base *wire.Session, now int64) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpTouch, Idle: capIdle(deadlineAfter(s.idleOf(base), now), base.HardDeadline)}}, nil
	})
}

// tokenChange is writeChange for the routes that answer with a new token.
func (s *Server) tokenChange(ctx *fasthttp.RequestCtx, p params, a access, logout bool, ops func(*wire.Session, int64) ([]wire.Op, error)) error {
	next, err := s.pathChange(ctx, p, a, logout, ops)
	if err != nil {
		return err
	}
	s.writeTokenSession(ctx, next, fasthttp.StatusOK, false, a)
	return nil
}

func (s *Server) sharedID(p params) (wire.ID, error) {
	name, err := p.text(0)
	if err != nil {
		return wire.ID{}, err
	}
	if len(name) > 200 {
		return wire.ID{}, badInput("name", "longer than 200 characters")
	}
	return wire.SharedID(s.shared, name), nil
}

func (s *Server) handleGetShared(ctx *fasthttp.RequestCtx, p params, a access) error {
	id, err := s.sharedID(p)
	if err != nil {
		return err
	}
	sess, err := s.readFor(id, 0, nil)
	if err != nil {
		return err
	}
	s.writeSession(ctx, sess, fasthttp.StatusOK, a)
	return nil
}

// handlePutShared creates the shared session called name with the body's
// context, or finds it (the body is then ignored): 201 or 200.
func (s *Server) handlePutShared(ctx *fasthttp.RequestCtx, p params, a access) error {
	id, err := s.sharedID(p)
	if err != nil {
		return err
	}
	obj, err := s.decodeObject(ctx.PostBody())
	if err != nil {
		return err
	}
	life, err := s.parseLifetime(obj, wire.KindShared)
	if err != nil {
		return err
	}
	// The body is the initial context, plus the member lifetime.
	obj.Map = obj.Map.Without("lifetime")
	ops, err := wire.ContextOps(obj, false, &s.lim)
	if err != nil {
		return err
	}
	mu := s.sessionLock(id)
	mu.Lock()
	defer mu.Unlock()
	sess, err := s.st.Get(s.base, id)
	switch {
	case err == nil && sess.Ended != 0:
		return errGone
	case err == nil:
		s.writeSession(ctx, sess, fasthttp.StatusOK, a)
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	now := s.nowMS()
	d := &wire.Delta{ID: id, Version: 1, At: now, Ops: append(s.startOps(wire.KindShared, 1, now, life), ops...)}
	next, err := wire.Apply(nil, d, &s.lim)
	if err != nil {
		return err
	}
	if err := s.commit(nil, next, d); err != nil {
		return err
	}
	s.writeSession(ctx, next, fasthttp.StatusCreated, a)
	return nil
}
