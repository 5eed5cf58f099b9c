// Package store defines the interface between the origin service and the
// backends that hold session state durably (the embedded Pebble store, and a
// Redis store later), and the errors they share. Every backend passes the
// conformance suite in origin/store/storetest.
//
// The interface is shaped so that a backend with server-side scripts can
// implement each write as one script call: the origin computes the next
// session state with wire.Apply and hands the backend a Commit, which the
// backend writes atomically if, and only if, the stored version still equals
// the delta's base version (compare-and-set).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The errors of every backend. Backends wrap them with %w.
var (
	// ErrNotFound reports an id the store does not hold.
	ErrNotFound = errors.New("store: session not found")
	// ErrConflict reports a Commit whose base version does not match the
	// stored session (or, for base version 0, a session that already exists).
	ErrConflict = errors.New("store: version conflict")
	// ErrClosed reports a call after Close.
	ErrClosed = errors.New("store: closed")
	// ErrUnavailable reports a backend that cannot be reached (Redis down
	// or failing over): nothing was written; try again later.
	ErrUnavailable = errors.New("store: backend unavailable")
)

// Commit is one atomic write: the delta that goes to the change log, the
// session state it produces, and the webhook events it causes. The backend
// writes all of it or nothing.
type Commit struct {
	// Delta is the change; its BaseVersion is checked against the stored
	// session (0: the session must not exist yet) and it is appended to the
	// change log.
	Delta *wire.Delta
	// Session is the state after the delta (wire.Apply's result); its
	// Version equals Delta.Version.
	Session *wire.Session
	// Prev, when set, is the stored session Delta applies to (the input of
	// wire.Apply), so a backend need not read it again to update its
	// indexes; the version check still guards against it being stale.
	Prev *wire.Session
	// Outbox holds webhook event bodies written in the same atomic write,
	// so an acknowledged write never loses the event it owes.
	Outbox [][]byte
}

// Cursor is an opaque position in the change log. Its text is the backend's
// own (a sequence number for Pebble, one stream position per shard for
// Redis); edges echo it back unchanged. The empty cursor is the beginning of
// the log.
type Cursor string

// Batch is a page of the change log: the deltas after a cursor, in cursor
// order (per-session order preserved), and the cursor after the last one.
// Reset means the asked cursor is older than the retained log (or not one of
// this store's); Cursor is then the head.
type Batch struct {
	Cursor Cursor
	Deltas []wire.Delta
	Reset  bool
}

// Due is an entry of the expiry index: a session and the instant its next
// expiry action (idle, hard, or purge of a tombstone) is due, Unix ms.
type Due struct {
	ID wire.ID
	At int64
}

// OutboxEntry is a webhook event waiting for delivery.
type OutboxEntry struct {
	ID   string // opaque, for OutboxDone
	Body []byte
}

// Stats are counters a backend keeps for metrics.
type Stats struct {
	LiveSessions int64 // sessions that are not tombstones
}

// Store holds sessions, the change log, the expiry and customer indexes,
// and the webhook outbox. Implementations are safe for concurrent use.
// Sessions returned by a Store are shared and must not be modified (wire.Apply
// never modifies its input).
type Store interface {
	// Get returns the session id, tombstones included (Ended != 0), or
	// ErrNotFound.
	Get(ctx context.Context, id wire.ID) (*wire.Session, error)
	// Commit writes c atomically and durably. It fails with ErrConflict
	// when the stored version is not c.Delta.BaseVersion.
	Commit(ctx context.Context, c *Commit) error
	// Touch records activity without a new version and without a change-log
	// entry: LastSeen and IdleDeadline move forward (never back) and the
	// expiry index follows. It returns the updated session, ErrNotFound for
	// an unknown id, and leaves tombstones untouched.
	Touch(ctx context.Context, id wire.ID, lastSeen, idleDeadline int64) (*wire.Session, error)
	// Purge deletes a tombstone at the given version for good (its hard
	// deadline passed). It fails with ErrConflict if the session changed.
	Purge(ctx context.Context, id wire.ID, version uint64) error

	// ChangesAfter returns up to limit deltas after cursor.
	ChangesAfter(ctx context.Context, cursor Cursor, limit int) (Batch, error)
	// Head returns the cursor after the newest delta readers may see.
	Head(ctx context.Context) (Cursor, error)
	// WaitChanges blocks until there are deltas after cursor, ctx is done,
	// or (for backends that learn of changes by notification) a fallback
	// interval passed; callers then ask ChangesAfter.
	WaitChanges(ctx context.Context, cursor Cursor) error

	// Expiring returns up to limit index entries due before (Unix ms), the
	// earliest first; the work is proportional to what is due.
	Expiring(ctx context.Context, before int64, limit int) ([]Due, error)
	// CustomerSessions returns the ids of the live sessions of customer cid.
	CustomerSessions(ctx context.Context, cid string) ([]wire.ID, error)

	// OutboxClaim returns up to limit undelivered outbox entries, oldest
	// first, that no caller (of any origin node sharing the store) claimed
	// within the last lease, and marks them claimed now: an entry is handed
	// out again only when its claimer neither finished it nor retried it for
	// a whole lease.
	OutboxClaim(ctx context.Context, limit int, lease time.Duration) ([]OutboxEntry, error)
	// OutboxDone removes a delivered entry.
	OutboxDone(ctx context.Context, id string) error
	// OutboxNotify returns a channel that receives a value after commits
	// that added outbox entries (coalesced; never closed).
	OutboxNotify() <-chan struct{}

	// Stats returns counters for metrics.
	Stats() Stats
	// Close releases the store; it waits for nothing in flight.
	Close() error
}

// DueAt returns the instant the expiry index keys session s by, Unix ms, or
// 0 when no action is ever due: for a live session the earlier of its idle
// deadline (not for shared sessions, whose idle action is none) and its hard
// deadline; for a tombstone the instant it may be purged, its hard deadline or
// tombstoneTTL after it ended when it has none.
func DueAt(s *wire.Session, tombstoneTTL int64) int64 {
	if s.Ended != 0 {
		if s.HardDeadline != 0 {
			return s.HardDeadline
		}
		return s.LastSeen + tombstoneTTL
	}
	due := s.HardDeadline
	if s.Kind != wire.KindShared && s.IdleDeadline != 0 && (due == 0 || s.IdleDeadline < due) {
		due = s.IdleDeadline
	}
	return due
}

// CBORGetter is implemented by stores that keep each session's CBOR encoding
// (wire.AppendSession) next to it, so the hot read path copies bytes instead
// of encoding. The returned session and bytes are shared and immutable.
type CBORGetter interface {
	GetCBOR(ctx context.Context, id wire.ID) (*wire.Session, []byte, error)
}
