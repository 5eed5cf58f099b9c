//go:build !wasip1

package proxytest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
)

// Origin is a fake origin that speaks the edge-facing part of the origin
// API (docs/api.md): sessions by id (CBOR) checked against the client's
// token, the sync feed, touch reports (creating an edge-minted session
// with what the edge applied to it, Touch.Init, and recording the client's
// device), self-service writes (public and the shopper-settable fields,
// creating a session with X-Session-Init), the customer's sessions
// (peers) and the soft logout, with the scopes and namespace filtering of
// edge keys (devices are left out of what edge keys see). Cursors are
// decimal log offsets.
type Origin struct {
	Now time.Time
	// APIKey is the edge's key: scopes edge:sync and edge:selfservice,
	// seeing the namespaces in EdgeNamespaces. Empty: no key is checked.
	APIKey         string
	EdgeNamespaces uint8 // default custom and public
	// AppKey, when set, is a key with every app scope (sessions:read,
	// sessions:write) that sees every namespace.
	AppKey string

	Sessions map[wire.ID]*wire.Session
	Log      []wire.Delta
	Touches  []wire.Touch
	// TouchesIgnored counts touch records the rules refused (generation or
	// kind of another state, ended, or not a session an edge could mint).
	TouchesIgnored int
	Requests       []string // "METHOD path" of every call served
	Polls          int
	// ResetNext makes the next sync answer a reset, as for a cursor that
	// fell out of retention.
	ResetNext bool
	// ReadCache models a lagging read cache: GET answers its copy of a
	// session unless ?minVersion asks for a newer one.
	ReadCache map[wire.ID]*wire.Session
	// Tokens are the tokens the edge presented (X-Session-Token), in order.
	Tokens []string
	// Inits are the X-Session-Init headers the edge sent, in order.
	Inits []string
	// SelfServiceFields are the well-known fields an edge key may write
	// (bit 1<<field); default siteCode, currency, targetLocation and
	// trackingAllowed.
	SelfServiceFields uint8
	// Fail, when set, answers the calls it matches ("METHOD path" without
	// the query) with its status instead of serving them.
	Fail map[string]int
	// RevokeVersion makes DELETE …/peers report the caller's session
	// version ("version"), as an origin whose revoke changes that session
	// would.
	RevokeVersion bool
}

// NewOrigin returns an empty origin whose clock starts at now.
func NewOrigin(now time.Time) *Origin {
	return &Origin{Now: now, Sessions: map[wire.ID]*wire.Session{},
		EdgeNamespaces:    1<<wire.NamespaceCustom | 1<<wire.NamespacePublic,
		SelfServiceFields: 1<<wire.FieldSiteCode | 1<<wire.FieldCurrency | 1<<wire.FieldTargetLocation | 1<<wire.FieldTrackingAllowed}
}

func (o *Origin) ms() int64 { return o.Now.UnixMilli() }

// Write applies ops to session id as one delta, creating it (anonymous,
// generation 1) if needed, and appends the delta to the feed.
func (o *Origin) Write(id wire.ID, ops ...wire.Op) (*wire.Session, error) {
	s := o.Sessions[id]
	var base uint64
	if s != nil {
		base = s.Version
	} else {
		ops = append([]wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1}}, ops...)
	}
	d := wire.Delta{ID: id, BaseVersion: base, Version: base + 1, At: o.ms(), Ops: ops}
	next, err := wire.Apply(s, &d, &wire.DefaultLimits)
	if err != nil {
		return nil, err
	}
	o.Sessions[id] = next
	o.Log = append(o.Log, d)
	return next, nil
}

// caller is what the API key of a call may do.
type caller struct {
	edge       bool  // an edge key: edge:sync and edge:selfservice
	namespaces uint8 // namespaces the key sees
}

func errBody(code, msg string) []byte {
	return []byte(`{"error":{"code":"` + code + `","message":"` + msg + `"}}`)
}

// Handle answers one call and returns the status and body.
func (o *Origin) Handle(c *abi.MockCall) (int, []byte) {
	status, body, _ := o.Reply(c)
	return status, body
}

// Reply answers one call and returns the status, the body and response
// headers (name, value, ...).
func (o *Origin) Reply(c *abi.MockCall) (int, []byte, []string) {
	method, path := c.Header(":method"), c.Header(":path")
	o.Requests = append(o.Requests, method+" "+path)
	who := caller{edge: true, namespaces: o.EdgeNamespaces}
	switch auth := c.Header("authorization"); {
	case o.APIKey == "" && o.AppKey == "":
	case o.APIKey != "" && auth == "Bearer "+o.APIKey:
	case o.AppKey != "" && auth == "Bearer "+o.AppKey:
		who = caller{namespaces: wire.AllNamespaces}
	default:
		return 401, errBody("unauthorized", "bad key"), nil
	}
	token := c.Header("x-session-token")
	if token != "" {
		o.Tokens = append(o.Tokens, token)
	}
	if v := c.Header("x-session-init"); v != "" {
		o.Inits = append(o.Inits, v)
	}
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if status, ok := o.Fail[method+" "+path]; ok {
		return status, errBody("unavailable", "failing on purpose"), nil
	}
	switch {
	case method == "GET" && path == "/v1/sync":
		if !who.edge {
			return 403, errBody("forbidden", "scope edge:sync needed"), nil
		}
		return o.sync(query, who)
	case method == "POST" && path == "/v1/sync/touch":
		if !who.edge {
			return 403, errBody("forbidden", "scope edge:sync needed"), nil
		}
		return o.touch(c.Body)
	case strings.HasPrefix(path, "/v1/sessions/"):
		rest := strings.TrimPrefix(path, "/v1/sessions/")
		idText, sub, _ := strings.Cut(rest, "/")
		id, err := wire.ParseID(idText)
		if err != nil {
			return 400, errBody("invalid_input", "bad id"), nil
		}
		return o.session(method, id, sub, query, c.Body, token, c.Header("x-session-init"), who)
	}
	return 404, errBody("not_found", "no such route"), nil
}

func queryParam(query, name string) string {
	for _, kv := range strings.Split(query, "&") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func (o *Origin) sync(query string, who caller) (int, []byte, []string) {
	o.Polls++
	after := -1
	if v := queryParam(query, "after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 400, errBody("invalid_input", "bad cursor"), nil
		}
		after = n
	}
	limit := 1000
	if v := queryParam(query, "limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	bt := wire.Batch{Cursor: strconv.Itoa(len(o.Log))}
	if after >= 0 {
		if after > len(o.Log) || o.ResetNext {
			o.ResetNext = false
			bt.Reset = true
		} else {
			end := min(len(o.Log), after+limit)
			for _, d := range o.Log[after:end] {
				bt.Deltas = append(bt.Deltas, filterDelta(d, who.namespaces))
			}
			bt.Cursor = strconv.Itoa(end)
		}
	}
	return 200, wire.AppendBatch(nil, &bt), nil
}

// filterDelta removes the ops on namespaces the key may not see, and the
// devices (edge keys see none); a delta left without ops still advances
// the version.
func filterDelta(d wire.Delta, namespaces uint8) wire.Delta {
	var ops []wire.Op
	for _, op := range d.Ops {
		switch op.Code {
		case wire.OpSetAttr, wire.OpDeleteAttr, wire.OpClearNamespace:
			if namespaces&(1<<op.NS) == 0 {
				continue
			}
		case wire.OpDevice:
			if namespaces != wire.AllNamespaces {
				continue
			}
		}
		ops = append(ops, op)
	}
	d.Ops = ops
	return d
}

// view returns s as the key may see it.
func view(s *wire.Session, who caller) []byte {
	if who.namespaces != wire.AllNamespaces {
		s = s.Clone()
		for ns := range s.Attrs {
			if who.namespaces&(1<<ns) == 0 {
				s.Attrs[ns] = nil
			}
		}
		s.FirstDevice, s.Device = wire.Device{}, wire.Device{}
	}
	return wire.AppendSession(nil, s)
}

// initOps returns the ops the origin applies when a touch report (or
// X-Session-Init) creates a session: of t.Init only setField of the
// site's fields and trackingAllowed and setAttr or deleteAttr in public,
// then the client's device.
func initOps(t *wire.Touch) []wire.Op {
	var ops []wire.Op
	for _, op := range t.Init {
		switch {
		case op.Code == wire.OpSetField && (op.Field == wire.FieldSiteCode || op.Field == wire.FieldCurrency ||
			op.Field == wire.FieldTargetLocation || op.Field == wire.FieldLocale || op.Field == wire.FieldTrackingAllowed):
		case (op.Code == wire.OpSetAttr || op.Code == wire.OpDeleteAttr) && op.NS == wire.NamespacePublic:
		default:
			continue
		}
		ops = append(ops, op)
	}
	if !t.Device.IsZero() {
		ops = append(ops, wire.Op{Code: wire.OpDevice, Device: t.Device})
	}
	return ops
}

// The timeouts the fake origin gives sessions it creates or logs out.
const (
	anonymousIdle = time.Hour
	anonymousHard = 24 * time.Hour
)

func (o *Origin) touch(body []byte) (int, []byte, []string) {
	ts, err := wire.DecodeTouches(body, nil)
	if err != nil {
		return 400, errBody("invalid_input", "bad touches"), nil
	}
	o.Touches = append(o.Touches, ts...)
	now := o.ms()
	for _, t := range ts {
		s := o.Sessions[t.ID]
		switch {
		case s != nil && (s.Ended != 0 || s.Generation != t.Generation || s.Kind != t.Kind):
			o.TouchesIgnored++
		case s != nil:
			n := s.Clone()
			n.LastSeen = max(n.LastSeen, min(t.LastSeen, now))
			o.Sessions[t.ID] = n
			if !t.Device.IsZero() && t.Device != n.Device {
				// A new client: recorded with a delta of its own.
				if _, err := o.Write(t.ID, wire.Op{Code: wire.OpDevice, Device: t.Device}); err != nil {
					return 400, errBody("invalid_input", "bad device"), nil
				}
			}
		case t.Kind != wire.KindAnonymous || t.Generation != 1 || t.HardDeadline <= now ||
			t.HardDeadline > now+(anonymousHard+time.Minute).Milliseconds():
			o.TouchesIgnored++
		default:
			d := wire.Delta{ID: t.ID, Version: 1, At: now, Ops: append([]wire.Op{{Code: wire.OpStart, Kind: t.Kind,
				Generation: t.Generation, Idle: t.IdleDeadline, Hard: t.HardDeadline}}, initOps(&t)...)}
			if s, err := wire.Apply(nil, &d, &wire.DefaultLimits); err == nil {
				o.Sessions[t.ID] = s
				o.Log = append(o.Log, d)
			} else {
				o.TouchesIgnored++
			}
		}
	}
	return 204, nil, nil
}

// checkToken applies the token rules of an edge call: the token must
// verify, name this session, and carry its generation. On logout an
// idle-expired token is accepted (the soft logout presents one).
func (o *Origin) checkToken(token string, id wire.ID, s *wire.Session, logout bool) (int, []byte, wire.Claims) {
	var cl wire.Claims
	switch err := Keyring.VerifyToken([]byte(token), o.Now.Unix(), &cl); {
	case token == "":
		return 401, errBody("token_required", "X-Session-Token is required"), cl
	case err == wire.ErrTokenIdleExpired && logout:
	case err == wire.ErrTokenHardExpired || err == wire.ErrTokenIdleExpired:
		return 401, errBody("token_expired", "token expired"), cl
	case err != nil:
		return 401, errBody("invalid_token", "token does not verify"), cl
	}
	if cl.ID != id {
		return 403, errBody("token_mismatch", "token of another session"), cl
	}
	if s != nil && s.Ended != 0 {
		return 410, errBody("gone", "session ended"), cl
	}
	if s != nil && s.Generation != cl.Generation {
		return 409, []byte(`{"error":{"code":"stale_generation","message":"token of another generation","currentGeneration":` +
			strconv.FormatUint(uint64(s.Generation), 10) + `}}`), cl
	}
	return 0, nil, cl
}

func (o *Origin) session(method string, id wire.ID, sub, query string, body []byte, token, init string, who caller) (int, []byte, []string) {
	s := o.Sessions[id]
	var cl wire.Claims
	if who.edge || token != "" {
		var status int
		var eb []byte
		if status, eb, cl = o.checkToken(token, id, s, method == "POST" && sub == "logout"); status != 0 {
			return status, eb, nil
		}
	}
	if s != nil && s.Ended != 0 {
		return 410, errBody("gone", "session ended"), nil
	}
	switch {
	case method == "GET" && sub == "":
		if s == nil {
			return 404, errBody("not_found", "no such session"), nil
		}
		if rc := o.ReadCache[id]; rc != nil {
			min, _ := strconv.ParseUint(queryParam(query, "minVersion"), 10, 64)
			if rc.Version >= min {
				return 200, view(rc, who), nil
			}
		}
		return 200, view(s, who), nil
	case method == "PATCH" && sub == "context":
		v, err := wire.ParseValueJSON(body)
		if err != nil {
			return 400, errBody("invalid_input", "bad json"), nil
		}
		if who.edge && v.Type == wire.TypeMap {
			for _, a := range v.Map {
				if f, ok := wire.ParseField(a.Key); a.Key != "public" && (!ok || o.SelfServiceFields&(1<<f) == 0) {
					return 400, []byte(`{"error":{"code":"invalid_input","message":"not writable with this key","field":"` + a.Key + `"}}`), nil
				}
			}
		}
		ops, err := wire.ContextOps(v, false, &wire.DefaultLimits)
		if err != nil {
			return 400, errBody("invalid_input", "bad patch"), nil
		}
		return o.write(id, s, &cl, who, init, ops)
	case method == "DELETE" && strings.HasPrefix(sub, "attributes/public/"):
		return o.write(id, s, &cl, who, init, []wire.Op{{Code: wire.OpDeleteAttr, NS: wire.NamespacePublic, Key: strings.TrimPrefix(sub, "attributes/public/")}})
	case method == "GET" && sub == "peers":
		if s == nil {
			return 404, errBody("not_found", "no such session"), nil
		}
		return 200, o.peers(s), nil
	case method == "DELETE" && sub == "peers":
		if s == nil {
			return 404, errBody("not_found", "no such session"), nil
		}
		n := 0
		for _, p := range o.peerSessions(s) {
			if p.ID != id {
				if _, err := o.Write(p.ID, wire.Op{Code: wire.OpEnd, Reason: wire.EndRevoked}); err == nil {
					n++
				}
			}
		}
		if o.RevokeVersion {
			return 200, []byte(`{"revoked":` + strconv.Itoa(n) + `,"version":` + strconv.FormatUint(o.Sessions[id].Version, 10) + `}`), nil
		}
		return 200, []byte(`{"revoked":` + strconv.Itoa(n) + `}`), nil
	case method == "POST" && sub == "logout":
		if s == nil {
			return 404, errBody("not_found", "no such session"), nil
		}
		if s.Kind != wire.KindCustomer {
			return 409, errBody("stale_generation", "not a customer session"), nil
		}
		idle := o.Now.Add(anonymousIdle).UnixMilli()
		if s.HardDeadline != 0 && idle > s.HardDeadline {
			idle = s.HardDeadline
		}
		next, err := o.Write(id, wire.Op{Code: wire.OpLogout, Generation: s.Generation + 1, Idle: idle})
		if err != nil {
			return 400, errBody("invalid_input", err.Error()), nil
		}
		now := o.Now.Unix()
		tok := Token(wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: next.Generation, IssuedAt: now,
			IdleDeadline: idle / 1000, HardDeadline: next.HardDeadline / 1000})
		return 200, view(next, who), []string{"x-session-token", tok}
	}
	return 405, errBody("method_not_allowed", "no such route"), nil
}

// peerSessions returns the live sessions of s's customer (s alone for a
// session without one): s first, then the others by last activity, the
// latest first.
func (o *Origin) peerSessions(s *wire.Session) []*wire.Session {
	out := []*wire.Session{s}
	cid := s.CustomerID()
	if cid == "" {
		return out
	}
	for _, p := range o.Sessions {
		if p.Ended == 0 && p.CustomerID() == cid && p.ID != s.ID {
			out = append(out, p)
		}
	}
	others := out[1:]
	sort.Slice(others, func(i, j int) bool {
		return others[i].LastSeen > others[j].LastSeen || others[i].LastSeen == others[j].LastSeen && string(others[i].ID[:]) < string(others[j].ID[:])
	})
	return out
}

// peers answers GET /v1/sessions/{id}/peers: the customer's sessions, the
// current one marked, each named by a handle, never by its id.
func (o *Origin) peers(s *wire.Session) []byte {
	b := []byte(`{"sessions":[`)
	for i, p := range o.peerSessions(s) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"current":`...)
		b = strconv.AppendBool(b, p.ID == s.ID)
		b = append(append(append(b, `,"kind":"`...), p.Kind.String()...), '"')
		for _, t := range []struct {
			name string
			v    int64
		}{{"created", p.Created}, {"lastSeen", p.LastSeen}, {"modified", p.Modified}} {
			if t.v != 0 {
				b = wire.AppendTimeJSON(append(append(append(b, `,"`...), t.name...), `":`...), t.v)
			}
		}
		for _, d := range []struct {
			name string
			dev  wire.Device
		}{{"firstDevice", p.FirstDevice}, {"device", p.Device}} {
			if !d.dev.IsZero() {
				b = append(append(append(b, `,"`...), d.name...), `":{"userAgent":`...)
				b = wire.AppendStringJSON(b, d.dev.UserAgent)
				b = wire.AppendStringJSON(append(b, `,"addr":`...), d.dev.Addr)
				b = append(wire.AppendStringJSON(append(b, `,"site":`...), d.dev.Site), '}')
			}
		}
		sum := sha256.Sum256(p.ID[:])
		b = append(append(append(b, `,"handle":"`...), hex.EncodeToString(sum[:8])...), `"}`...)
	}
	return append(b, "]}"...)
}

// write applies a self-service write; an unknown session is created only
// for an edge-minted token (anonymous, generation 1), with what the edge
// applied to it (X-Session-Init, a report of one touch of that session).
func (o *Origin) write(id wire.ID, s *wire.Session, cl *wire.Claims, who caller, init string, ops []wire.Op) (int, []byte, []string) {
	if s == nil {
		if who.edge && (cl.Kind != wire.KindAnonymous || cl.Generation != 1) {
			return 404, errBody("not_found", "no such session"), nil
		}
		var iops []wire.Op
		if init != "" {
			raw, err := base64.RawURLEncoding.DecodeString(init)
			var ts []wire.Touch
			if err == nil {
				ts, err = wire.DecodeTouchesLimits(raw, nil, &wire.DefaultLimits)
			}
			if err != nil || len(ts) != 1 || ts[0].ID != id {
				return 400, []byte(`{"error":{"code":"invalid_input","message":"bad X-Session-Init","field":"X-Session-Init"}}`), nil
			}
			iops = initOps(&ts[0])
		}
		ops = append(append([]wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1,
			Idle: cl.IdleDeadline * 1000, Hard: cl.HardDeadline * 1000}}, iops...), ops...)
	}
	var base uint64
	if s != nil {
		base = s.Version
	}
	d := wire.Delta{ID: id, BaseVersion: base, Version: base + 1, At: o.ms(), Ops: ops}
	next, err := wire.Apply(s, &d, &wire.DefaultLimits)
	if err != nil {
		return 400, errBody("invalid_input", strings.ReplaceAll(err.Error(), `"`, `'`)), nil
	}
	o.Sessions[id] = next
	o.Log = append(o.Log, d)
	return 200, view(next, who), nil
}
