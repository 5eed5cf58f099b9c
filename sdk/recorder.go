package sdk

import (
	"context"
	"encoding/base64"
	"sync/atomic"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Read-your-writes. The edge serves each request from its copy of the
// session, which the origin's change feed keeps up to date within a sync
// interval. So that a shopper who just added to the cart sees the cart on
// the next page, the app tells the edge which version its write reached:
// the response header HeaderWritten. The edge then refreshes its copy, on
// whichever of its VMs or edges (sharing the cookie) the next request lands,
// before it forwards that request.
//
// The middlewares (sdk/sessionhttp, sdk/sessionfasthttp) do this for you:
// they put a WriteRecorder for the request's session into the request's
// context, every Client write given that context (or one derived from it)
// records the version it reached, and the middleware sets HeaderWritten
// before the response header goes out. Writes that end after the response
// header was sent, and writes made with another context, reach the edge
// through the change feed as before.

// WriteRecorder collects the highest version that Client writes reached for
// one session while a request is handled. It is safe for concurrent use.
type WriteRecorder struct {
	id      string
	version atomic.Uint64
	view    *View // the request's view when the origin does not know the session yet; nil otherwise
}

// NewWriteRecorderFor returns a recorder for the session of the request
// view v (the middlewares use it). When v says the origin does not know the
// session yet (StatusNew: the edge minted it), the recorder also keeps what
// the edge applied to it, the site defaults and the public values of the
// forwarded view: a Client upsert given the request's context that creates
// the session sends them (X-Session-Init), so the origin's copy carries the
// site, currency, location and locale the shopper sees, as a session the
// edge reported does.
func NewWriteRecorderFor(v *View) *WriteRecorder {
	r := &WriteRecorder{id: v.ID}
	if v.Status == StatusNew && v.Kind == wire.KindAnonymous && v.Generation == 1 {
		r.view = v
	}
	return r
}

// initHeader returns the X-Session-Init value for an upsert of the
// recorder's session, "" when there is nothing to send: a touch report of
// the one session, with what the edge applied to it as its initial ops.
func (r *WriteRecorder) initHeader(now time.Time) string {
	v := r.view
	if v == nil {
		return ""
	}
	id, err := wire.ParseID(v.ID)
	if err != nil {
		return ""
	}
	t := wire.Touch{ID: id, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now.UnixMilli()}
	for _, f := range [...]wire.Field{wire.FieldSiteCode, wire.FieldCurrency, wire.FieldTargetLocation, wire.FieldLocale, wire.FieldTrackingAllowed} {
		if !v.Fields[f].IsZero() {
			t.Init = append(t.Init, wire.Op{Code: wire.OpSetField, Field: f, Value: v.Fields[f]})
		}
	}
	for _, a := range v.Attrs[wire.NamespacePublic] {
		t.Init = append(t.Init, wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: a.Key, Value: a.Value})
	}
	if len(t.Init) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(wire.AppendTouches(nil, []wire.Touch{t}))
}

// NewWriteRecorder returns a recorder for the session with id.
func NewWriteRecorder(sessionID string) *WriteRecorder { return &WriteRecorder{id: sessionID} }

// SessionID returns the id of the session the recorder records.
func (r *WriteRecorder) SessionID() string { return r.id }

// Record notes that the session reached version at the origin.
func (r *WriteRecorder) Record(version uint64) {
	for {
		cur := r.version.Load()
		if version <= cur || r.version.CompareAndSwap(cur, version) {
			return
		}
	}
}

// Version returns the highest version recorded, 0 when none was.
func (r *WriteRecorder) Version() uint64 { return r.version.Load() }

type contextKey struct{ name string }

// WriteRecorderKey is the context key of a request's WriteRecorder. Use
// WithWriteRecorder with a context.Context; in fasthttp, whose RequestCtx
// is a context.Context that looks values up among its user values, store
// the recorder with ctx.SetUserValue(sdk.WriteRecorderKey, rec).
var WriteRecorderKey any = &contextKey{"sessionedge write recorder"}

// WithWriteRecorder returns a copy of ctx that carries rec.
func WithWriteRecorder(ctx context.Context, rec *WriteRecorder) context.Context {
	return context.WithValue(ctx, WriteRecorderKey, rec)
}

// WriteRecorderFrom returns the recorder ctx carries, or nil.
func WriteRecorderFrom(ctx context.Context) *WriteRecorder {
	if ctx == nil {
		return nil
	}
	r, _ := ctx.Value(WriteRecorderKey).(*WriteRecorder)
	return r
}

// withInit sets on an upsert of session id the X-Session-Init header of
// the request's view in ctx, if the recorder there has one for id.
func withInit(ctx context.Context, id string, r *request) {
	if r.query.Get("upsert") != "true" {
		return
	}
	if rec := WriteRecorderFrom(ctx); rec != nil && rec.id == id {
		r.init = rec.initHeader(time.Now())
	}
}

// recordWrite records s.Version in the recorder of ctx when the write was
// to that recorder's session.
func recordWrite(ctx context.Context, id string, s *Session) {
	if s == nil || s.Version == 0 {
		return
	}
	if r := WriteRecorderFrom(ctx); r != nil && r.id == id {
		r.Record(s.Version)
	}
}
