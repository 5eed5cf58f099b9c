package sdk

import (
	"context"
	"sync/atomic"
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
