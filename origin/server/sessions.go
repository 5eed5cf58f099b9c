package server

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync"

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

// writeSession answers with the session in the negotiated format and its
// version as ETag. On a cache hit it allocates nothing: the encoding goes
// into a pooled buffer that fasthttp copies into its own reused body.
func (s *Server) writeSession(ctx *fasthttp.RequestCtx, sess *wire.Session, status int) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	setETag(ctx, sess.Version)
	if wantsCBOR(ctx) {
		ctx.SetContentType("application/cbor")
		b = wire.AppendSession(b, sess)
	} else {
		ctx.SetContentType("application/json")
		b = wire.AppendSessionJSON(b, sess, wire.AllNamespaces)
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
func (s *Server) writeTokenSession(ctx *fasthttp.RequestCtx, sess *wire.Session, status int, withID bool) {
	tok := s.token(sess)
	if wantsCBOR(ctx) {
		ctx.Response.Header.Set("X-Session-Token", tok)
		s.writeSession(ctx, sess, status)
		return
	}
	b := append(make([]byte, 0, 1024), '{')
	if withID {
		b = append(sess.ID.AppendText(append(b, `"id":"`...)), `",`...)
	}
	b = append(append(append(b, `"token":"`...), tok...), `","session":`...)
	b = append(wire.AppendSessionJSON(b, sess, wire.AllNamespaces), '}')
	ctx.Response.Header.Set("ETag", `"`+strconv.FormatUint(sess.Version, 10)+`"`)
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}

// token mints a token for sess (token times are Unix seconds).
func (s *Server) token(sess *wire.Session) string {
	c := wire.Claims{Kind: sess.Kind, ID: sess.ID, Generation: sess.Generation, IssuedAt: s.nowMS() / 1000,
		IdleDeadline: sess.IdleDeadline / 1000, HardDeadline: sess.HardDeadline / 1000}
	return string(s.keyring.AppendToken(nil, &c))
}

// ifMatch returns the If-Match version, or -1 without the header.
func ifMatch(ctx *fasthttp.RequestCtx) (int64, error) {
	h := ctx.Request.Header.Peek("If-Match")
	if len(h) == 0 {
		return -1, nil
	}
	h = bytes.TrimPrefix(bytes.TrimSpace(h), []byte("W/"))
	h = bytes.Trim(h, `"`)
	v, err := strconv.ParseUint(string(h), 10, 63)
	if err != nil {
		return 0, badInput("If-Match", "must be a version number")
	}
	return int64(v), nil
}

func upsert(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.QueryArgs().Peek("upsert")) == "true"
}

func (s *Server) startOp(kind wire.Kind, gen uint32, now int64) wire.Op {
	t := s.tm[kind]
	return wire.Op{Code: wire.OpStart, Kind: kind, Generation: gen, Idle: t.Idle.deadline(now), Hard: t.Hard.deadline(now)}
}

// change is one write to a session.
type change struct {
	id      wire.ID
	ifMatch int64 // -1: none
	upsert  bool  // create an unknown id as anonymous
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
			start := s.startOp(wire.KindAnonymous, 1, now)
			ops = append(ops, start)
			if base, err = wire.Apply(nil, &wire.Delta{ID: c.id, Version: 1, At: now, Ops: ops}, &s.lim); err != nil {
				return nil, nil, err
			}
		case err != nil:
			return nil, nil, err
		case cur.Ended != 0:
			return nil, nil, errGone
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
	err := s.st.Commit(s.base, &store.Commit{Delta: d, Session: next, Prev: prev, Outbox: s.events(prev, next, d.At)})
	s.metrics.storeCommit.Observe(s.now().Sub(start).Seconds())
	return err
}

func (s *Server) getSession(p params) (*wire.Session, error) {
	id, err := s.parseID(p)
	if err != nil {
		return nil, err
	}
	sess, err := s.st.Get(s.base, id)
	if err != nil {
		return nil, err
	}
	if sess.Ended != 0 {
		return nil, errGone
	}
	return sess, nil
}

func (s *Server) handleGet(ctx *fasthttp.RequestCtx, p params) error {
	if cg, ok := s.st.(store.CBORGetter); ok && wantsCBOR(ctx) && len(ctx.QueryArgs().Peek("items")) == 0 {
		id, err := s.parseID(p)
		if err != nil {
			return err
		}
		sess, enc, err := cg.GetCBOR(s.base, id)
		if err != nil {
			return err
		}
		if sess.Ended != 0 {
			return errGone
		}
		setETag(ctx, sess.Version)
		ctx.SetContentType("application/cbor")
		ctx.SetBody(enc)
		return nil
	}
	sess, err := s.getSession(p)
	if err != nil {
		return err
	}
	if items := ctx.QueryArgs().Peek("items"); len(items) > 0 {
		if sess, err = selectItems(sess, string(items)); err != nil {
			return err
		}
	}
	s.writeSession(ctx, sess, fasthttp.StatusOK)
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

// decodeObject parses a JSON object body; an empty body is an empty object.
func decodeObject(body []byte) (wire.Value, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return wire.Value{Type: wire.TypeMap}, nil
	}
	v, err := wire.ParseValueJSON(body)
	if err != nil {
		return v, err
	}
	if v.Type != wire.TypeMap {
		return v, badInput("body", "must be a JSON object")
	}
	return v, nil
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

func (s *Server) handleCreate(ctx *fasthttp.RequestCtx, _ params) error {
	obj, err := decodeObject(ctx.PostBody())
	if err != nil {
		return err
	}
	kind := wire.KindAnonymous
	ks, err := textMember(obj, "kind")
	if err != nil {
		return err
	}
	if ks != "" {
		var ok bool
		if kind, ok = wire.ParseKind(ks); !ok || kind == wire.KindShared {
			return badInput("kind", "must be anonymous or customer (shared sessions: PUT /v1/shared/{name})")
		}
	}
	cid, err := textMember(obj, "customerId")
	if err != nil {
		return err
	}
	if kind == wire.KindCustomer && cid == "" {
		return badInput("customerId", "required for kind customer")
	}
	ctxObj, _, err := contextMember(obj, "context")
	if err != nil {
		return err
	}
	ctxOps, err := wire.ContextOps(ctxObj, false, &s.lim)
	if err != nil {
		return err
	}
	id, err := wire.NewID()
	if err != nil {
		return err
	}
	now := s.nowMS()
	ops := []wire.Op{s.startOp(wire.KindAnonymous, 1, now)}
	if cid != "" {
		t := s.tm[wire.KindCustomer]
		ops = append(ops, wire.Op{Code: wire.OpLogin, CustomerID: cid, Generation: 2, Idle: t.Idle.deadline(now), Hard: t.Hard.deadline(now)})
	}
	ops = append(ops, ctxOps...)
	d := &wire.Delta{ID: id, Version: 1, At: now, Ops: ops}
	next, err := wire.Apply(nil, d, &s.lim)
	if err != nil {
		return err
	}
	if err := s.commit(nil, next, d); err != nil {
		return err
	}
	s.writeTokenSession(ctx, next, fasthttp.StatusCreated, true)
	return nil
}

// writeChange runs a change for the session in the path and answers with
// the new state.
func (s *Server) writeChange(ctx *fasthttp.RequestCtx, p params, ops func(*wire.Session, int64) ([]wire.Op, error)) error {
	next, err := s.pathChange(ctx, p, ops)
	if err != nil {
		return err
	}
	s.writeSession(ctx, next, fasthttp.StatusOK)
	return nil
}

// pathChange applies ops to the session in the path, honouring If-Match and
// ?upsert=true.
func (s *Server) pathChange(ctx *fasthttp.RequestCtx, p params, ops func(*wire.Session, int64) ([]wire.Op, error)) (*wire.Session, error) {
	id, err := s.parseID(p)
	if err != nil {
		return nil, err
	}
	im, err := ifMatch(ctx)
	if err != nil {
		return nil, err
	}
	_, next, err := s.write(change{id: id, ifMatch: im, upsert: upsert(ctx), ops: ops})
	return next, err
}

// bodyContextOps parses a context body: a JSON object, or with
// Content-Type application/cbor a CBOR-encoded context value (wire.AppendValue
// of a map).
func (s *Server) bodyContextOps(ctx *fasthttp.RequestCtx, replace bool) ([]wire.Op, error) {
	var obj wire.Value
	var err error
	if isCBORBody(ctx) {
		obj, err = wire.DecodeValue(ctx.PostBody())
	} else {
		obj, err = decodeObject(ctx.PostBody())
	}
	if err != nil {
		return nil, err
	}
	if replace {
		// PUT keeps customerId: only login and logout change it.
		obj.Map = obj.Map.Without("customerId")
	}
	return wire.ContextOps(obj, replace, &s.lim)
}

func (s *Server) handlePutContext(ctx *fasthttp.RequestCtx, p params) error {
	ops, err := s.bodyContextOps(ctx, true)
	if err != nil {
		return err
	}
	return s.writeChange(ctx, p, func(*wire.Session, int64) ([]wire.Op, error) { return ops, nil })
}

func (s *Server) handlePatchContext(ctx *fasthttp.RequestCtx, p params) error {
	ops, err := s.bodyContextOps(ctx, false)
	if err != nil {
		return err
	}
	return s.writeChange(ctx, p, func(*wire.Session, int64) ([]wire.Op, error) { return ops, nil })
}

func (s *Server) handleAddAttr(ctx *fasthttp.RequestCtx, p params) error {
	obj, err := decodeObject(ctx.PostBody())
	if err != nil {
		return err
	}
	nsName, err := textMember(obj, "namespace")
	if err != nil {
		return err
	}
	ns, ok := wire.ParseNamespace(nsName)
	if !ok {
		return badInput("namespace", "must be custom, privacy or public")
	}
	key, err := textMember(obj, "key")
	if err != nil {
		return err
	}
	field := nsName + "." + key
	if err := s.lim.ValidateKey(field, key); err != nil {
		return err
	}
	v, _ := obj.Map.Get("value")
	if v.IsZero() {
		return badInput("value", "required")
	}
	if err := s.lim.ValidateValue(field, v); err != nil {
		return err
	}
	op := wire.Op{Code: wire.OpSetAttr, NS: ns, Key: key, Value: v}
	return s.writeChange(ctx, p, func(*wire.Session, int64) ([]wire.Op, error) { return []wire.Op{op}, nil })
}

func (s *Server) handleDeleteAttr(ctx *fasthttp.RequestCtx, p params) error {
	nsName, err := p.text(1)
	if err != nil {
		return err
	}
	ns, ok := wire.ParseNamespace(nsName)
	if !ok {
		return badInput("namespace", "must be custom, privacy or public")
	}
	key, err := p.text(2)
	if err != nil {
		return err
	}
	op := wire.Op{Code: wire.OpDeleteAttr, NS: ns, Key: key}
	return s.writeChange(ctx, p, func(*wire.Session, int64) ([]wire.Op, error) { return []wire.Op{op}, nil })
}

// handleClearData empties the context (every namespace and every
// well-known field but customerId) and keeps the session, its id, kind and
// login.
func (s *Server) handleClearData(ctx *fasthttp.RequestCtx, p params) error {
	ops, err := wire.ContextOps(wire.Value{Type: wire.TypeMap}, true, &s.lim)
	if err != nil {
		return err
	}
	return s.writeChange(ctx, p, func(*wire.Session, int64) ([]wire.Op, error) { return ops, nil })
}

func (s *Server) handleEnd(ctx *fasthttp.RequestCtx, p params) error {
	return s.writeChange(ctx, p, func(*wire.Session, int64) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpEnd, Reason: wire.EndAbandoned}}, nil
	})
}

func (s *Server) handleLogin(ctx *fasthttp.RequestCtx, p params) error {
	obj, err := decodeObject(ctx.PostBody())
	if err != nil {
		return err
	}
	cid, err := textMember(obj, "customerId")
	if err != nil {
		return err
	}
	if cid == "" {
		return badInput("customerId", "required")
	}
	profile, ok, err := contextMember(obj, "profile")
	if err != nil {
		return err
	}
	if !ok {
		if profile, _, err = contextMember(obj, "context"); err != nil {
			return err
		}
	}
	profOps, err := wire.ContextOps(profile, false, &s.lim)
	if err != nil {
		return err
	}
	return s.tokenChange(ctx, p, func(base *wire.Session, now int64) ([]wire.Op, error) {
		if base.Kind == wire.KindShared {
			return nil, badInput("kind", "a shared session cannot log in")
		}
		t := s.tm[wire.KindCustomer]
		ops := []wire.Op{{Code: wire.OpLogin, CustomerID: cid, Generation: base.Generation + 1,
			Idle: t.Idle.deadline(now), Hard: t.Hard.deadline(now)}}
		return append(ops, profOps...), nil
	})
}

func (s *Server) handleLogout(ctx *fasthttp.RequestCtx, p params) error {
	return s.tokenChange(ctx, p, func(base *wire.Session, now int64) ([]wire.Op, error) {
		if base.Kind == wire.KindShared {
			return nil, badInput("kind", "a shared session cannot log out")
		}
		t := s.tm[wire.KindAnonymous]
		return []wire.Op{{Code: wire.OpLogout, Generation: base.Generation + 1, Idle: t.Idle.deadline(now), Hard: t.Hard.deadline(now)}}, nil
	})
}

func (s *Server) handleRefresh(ctx *fasthttp.RequestCtx, p params) error {
	return s.tokenChange(ctx, p, func(base *wire.Session, now int64) ([]wire.Op, error) {
		return []wire.Op{{Code: wire.OpTouch, Idle: s.tm[base.Kind].Idle.deadline(now)}}, nil
	})
}

// tokenChange is writeChange for the routes that answer with a new token.
func (s *Server) tokenChange(ctx *fasthttp.RequestCtx, p params, ops func(*wire.Session, int64) ([]wire.Op, error)) error {
	next, err := s.pathChange(ctx, p, ops)
	if err != nil {
		return err
	}
	s.writeTokenSession(ctx, next, fasthttp.StatusOK, false)
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

func (s *Server) handleGetShared(ctx *fasthttp.RequestCtx, p params) error {
	id, err := s.sharedID(p)
	if err != nil {
		return err
	}
	sess, err := s.st.Get(s.base, id)
	if err != nil {
		return err
	}
	if sess.Ended != 0 {
		return errGone
	}
	s.writeSession(ctx, sess, fasthttp.StatusOK)
	return nil
}

// handlePutShared creates the shared session called name with the body's
// context, or finds it (the body is then ignored): 201 or 200.
func (s *Server) handlePutShared(ctx *fasthttp.RequestCtx, p params) error {
	id, err := s.sharedID(p)
	if err != nil {
		return err
	}
	obj, err := decodeObject(ctx.PostBody())
	if err != nil {
		return err
	}
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
		s.writeSession(ctx, sess, fasthttp.StatusOK)
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	now := s.nowMS()
	d := &wire.Delta{ID: id, Version: 1, At: now, Ops: append([]wire.Op{s.startOp(wire.KindShared, 1, now)}, ops...)}
	next, err := wire.Apply(nil, d, &s.lim)
	if err != nil {
		return err
	}
	if err := s.commit(nil, next, d); err != nil {
		return err
	}
	s.writeSession(ctx, next, fasthttp.StatusCreated)
	return nil
}

func (s *Server) handleCustomerSessions(ctx *fasthttp.RequestCtx, p params) error {
	cid, err := p.text(0)
	if err != nil {
		return err
	}
	ids, err := s.st.CustomerSessions(s.base, cid)
	if err != nil {
		return err
	}
	b := append(make([]byte, 0, 512), `{"sessions":[`...)
	n := 0
	for _, id := range ids {
		sess, err := s.st.Get(s.base, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if sess.Ended != 0 || sess.CustomerID() != cid {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = wire.AppendSessionJSON(b, sess, wire.AllNamespaces)
		n++
	}
	b = append(b, "]}"...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	return nil
}

// handleRevokeCustomer ends every session of a customer with EndRevoked;
// edges learn it from the feed.
func (s *Server) handleRevokeCustomer(ctx *fasthttp.RequestCtx, p params) error {
	cid, err := p.text(0)
	if err != nil {
		return err
	}
	ids, err := s.st.CustomerSessions(s.base, cid)
	if err != nil {
		return err
	}
	n := 0
	for _, id := range ids {
		_, _, err := s.write(change{id: id, ifMatch: -1, ops: func(base *wire.Session, _ int64) ([]wire.Op, error) {
			if base.CustomerID() != cid {
				return nil, nil
			}
			return []wire.Op{{Code: wire.OpEnd, Reason: wire.EndRevoked}}, nil
		}})
		switch {
		case err == nil:
			n++
		case errors.Is(err, store.ErrNotFound), errors.Is(err, errGone):
		default:
			return err
		}
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"revoked":` + strconv.Itoa(n) + `}`)
	return nil
}
