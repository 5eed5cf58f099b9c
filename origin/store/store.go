// Package store defines the interface between the origin service and the
// backends that hold session state durably (the embedded Pebble store, and
// Redis or Redis Cluster), and the errors they share. Every backend passes the
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
	// Settle, when not nil, settles the session's pending change event
	// (see ChangeDue) in the same atomic write: when one is pending, Settle
	// goes to the outbox ahead of Outbox and the pending record is dropped;
	// when none is, Settle is not written.
	Settle []byte
	// ChangeDue, when not 0, owes the session a coalesced change event due
	// at ChangeDue (Unix ms): the store records it in the same atomic write
	// (after Settle), unless one is already pending, in which case nothing
	// more is written. A burst of writes so owes one event, and the record
	// costs no write of its own. ChangesDue lists the records that are due,
	// Emit settles them.
	ChangeDue int64
}

// Emission writes webhook events of a session without changing it
// (Store.Emit).
type Emission struct {
	ID wire.ID
	// Version is the version of the session the events describe: they are
	// written only while the stored session is still at it.
	Version uint64
	// Pending settles the session's pending change event (Commit.ChangeDue):
	// when one is pending, Pending goes to the outbox first (nil: the record
	// is dropped without an event) and the record is dropped.
	Pending []byte
	// Outbox holds further events, written after Pending.
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

// CacheStats are the counters of a store's read cache (origin/store/cache),
// for metrics. Every backend counts the same way: Hits and Misses count
// reads of a session (Get, GetAtLeast, GetCBOR, ...), a read that finds an
// entry older than the version it asks for being a miss; Bytes is what the
// entries count against MaxBytes (each its CBOR encoding plus overheads
// for the decoded session and its values, see the cache package).
type CacheStats struct {
	Hits, Misses uint64
	Evictions    uint64
	Entries      int64
	Bytes        int64
	MaxBytes     int64 // 0: the cache is disabled
}

// HitRatio returns Hits / (Hits + Misses), or 0 before the first read.
func (s CacheStats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// Store holds sessions, the change log, the expiry and customer indexes,
// and the webhook outbox. Implementations are safe for concurrent use.
// Sessions returned by a Store are shared and must not be modified (wire.Apply
// never modifies its input).
type Store interface {
	// Get returns the session id, tombstones included (Ended != 0), or
	// ErrNotFound.
	Get(ctx context.Context, id wire.ID) (*wire.Session, error)
	// GetAtLeast is Get for read-your-writes: it does not answer from a
	// cached copy older than minVersion but reads the backend (and caches
	// what it read). When the backend itself holds an older version, that
	// is the answer. minVersion 0 is Get.
	GetAtLeast(ctx context.Context, id wire.ID, minVersion uint64) (*wire.Session, error)
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

	// ChangesDue returns up to limit sessions whose pending change event
	// (Commit.ChangeDue) is due before (Unix ms), the earliest first.
	ChangesDue(ctx context.Context, before int64, limit int) ([]Due, error)
	// Emit writes each emission atomically and all of them durably (about
	// one sync for the call, not one per emission): if the stored session
	// is still at the emission's version, its pending change event is
	// settled and its events appended to the outbox. It answers one error
	// per emission: nil; ErrConflict when the session moved on (read it
	// again); ErrNotFound for an unknown id, whose pending record, if any,
	// is dropped; or the backend's error.
	Emit(ctx context.Context, es []Emission) []error

	// Stats returns counters for metrics. It may ask the backend.
	Stats() Stats
	// CacheStats returns the read cache's counters; it never asks the
	// backend.
	CacheStats() CacheStats
	// Close releases the store; it waits for nothing in flight.
	Close() error
}

// DueAt returns the instant the expiry index keys session s by, Unix ms, or
// 0 when no action is ever due.
//
// A live session is due at the earlier of its idle deadline (not for shared
// sessions, whose idle action is none) and its hard deadline.
//
// A tombstone is due for purging once no token of its session can be valid:
// while it exists, old tokens get 410 and cannot bring the id back (a touch
// or a self-service write never recreates an id that has a tombstone). A
// token never outlives the hard deadline it carries, which is the
// session's hard deadline at the token's generation; hard deadlines are set
// when the session starts and never grow, but a login may lower one. So:
//
//   - a session still at generation 1 with a hard deadline (its hard
//     deadline never changed, and every token carries it) is purged at its
//     hard deadline;
//   - any other session (no hard deadline, as shared sessions, or a
//     generation raised by login or logout, whose older tokens may carry a
//     later deadline than the last one) at the later of its hard deadline
//     and its end + tombstoneTTL. tombstoneTTL must be at least the
//     longest a token can stay valid after it is issued (the shared
//     sessions' token lifetime; for the other kinds their idle timeout, or
//     their hard timeout where they have no idle timeout), since no token is
//     issued after the end.
//
// A tombstone's LastSeen is the instant it ended (wire.Apply sets it on
// OpEnd).
func DueAt(s *wire.Session, tombstoneTTL int64) int64 {
	if s.Ended != 0 {
		if s.Generation <= 1 && s.HardDeadline != 0 {
			return s.HardDeadline
		}
		purge := s.LastSeen + min(tombstoneTTL, wire.MaxTime) // the end, + TTL
		// Never past the year 9999: Redis keeps the index in doubles.
		return min(max(purge, s.HardDeadline), wire.MaxTime)
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
	// GetCBORAtLeast is GetCBOR with GetAtLeast's minVersion.
	GetCBORAtLeast(ctx context.Context, id wire.ID, minVersion uint64) (*wire.Session, []byte, error)
}
