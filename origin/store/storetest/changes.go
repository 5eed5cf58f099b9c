package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// drainOutbox claims and acknowledges every outbox entry and returns their
// bodies in order.
func drainOutbox(t *testing.T, st store.Store) []string {
	t.Helper()
	var out []string
	for {
		es, err := st.OutboxClaim(ctx, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return out
		}
		for _, e := range es {
			out = append(out, string(e.Body))
			if err := st.OutboxDone(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func pendingOf(t *testing.T, st store.Store, id wire.ID) (int64, bool) {
	t.Helper()
	due, err := st.ChangesDue(ctx, wire.MaxTime, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range due {
		if d.ID == id {
			return d.At, true
		}
	}
	return 0, false
}

// testPendingChanges: a change event is recorded once per burst of writes,
// settled by a commit (ahead of the commit's own events) or by Emit, and
// Emit writes only at the session's version.
func testPendingChanges(t *testing.T, st store.Store) {
	id := newID(t)
	Write(t, st, id, 10, store.Commit{Outbox: [][]byte{[]byte("started")}}, start(wire.KindAnonymous, 0, 0))
	Write(t, st, id, 20, store.Commit{ChangeDue: 100}, setAttr("a", wire.Int(1)))
	Write(t, st, id, 30, store.Commit{ChangeDue: 200}, setAttr("a", wire.Int(2)))
	if at, ok := pendingOf(t, st, id); !ok || at != 100 {
		t.Fatalf("pending change at %d (%v), want 100: a pending event is kept, not moved", at, ok)
	}
	if due, err := st.ChangesDue(ctx, 100, 10); err != nil || len(due) != 0 {
		t.Fatalf("ChangesDue(before its time) = %+v, %v", due, err)
	}
	if due, err := st.ChangesDue(ctx, 101, 10); err != nil || len(due) != 1 || due[0].ID != id || due[0].At != 100 {
		t.Fatalf("ChangesDue = %+v, %v", due, err)
	}
	if got := drainOutbox(t, st); !slices.Equal(got, []string{"started"}) {
		t.Fatalf("outbox %q: recording a change event wrote an entry", got)
	}

	// A lifecycle commit settles it ahead of its own event.
	Write(t, st, id, 40, store.Commit{Settle: []byte("changed"), Outbox: [][]byte{[]byte("login")}}, login("c", 2))
	if _, ok := pendingOf(t, st, id); ok {
		t.Fatal("settled change event still pending")
	}
	// Nothing pending: Settle is not written.
	s := Write(t, st, id, 50, store.Commit{Settle: []byte("changed-again"), Outbox: [][]byte{[]byte("logout")}},
		wire.Op{Code: wire.OpLogout, Generation: 3})
	if got := drainOutbox(t, st); !slices.Equal(got, []string{"changed", "login", "logout"}) {
		t.Fatalf("outbox %q", got)
	}

	// Emit settles at the session's version only.
	s = Write(t, st, id, 60, store.Commit{ChangeDue: 300}, setAttr("b", wire.Int(1)))
	errs := st.Emit(ctx, []store.Emission{{ID: id, Version: s.Version - 1, Pending: []byte("stale")}})
	if len(errs) != 1 || !errors.Is(errs[0], store.ErrConflict) {
		t.Fatalf("Emit(stale version) = %v, want ErrConflict", errs)
	}
	if _, ok := pendingOf(t, st, id); !ok {
		t.Fatal("a conflicting Emit dropped the pending change event")
	}
	unknown := newID(t)
	errs = st.Emit(ctx, []store.Emission{
		{ID: id, Version: s.Version, Pending: []byte("changed-3"), Outbox: [][]byte{[]byte("flushed")}},
		{ID: unknown, Version: 1, Pending: []byte("never")},
	})
	if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], store.ErrNotFound) {
		t.Fatalf("Emit = %v", errs)
	}
	if _, ok := pendingOf(t, st, id); ok {
		t.Fatal("Emit left the change event pending")
	}
	// Nothing pending any more: only the other events.
	if errs := st.Emit(ctx, []store.Emission{{ID: id, Version: s.Version, Pending: []byte("changed-4"), Outbox: [][]byte{[]byte("flushed-2")}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if got := drainOutbox(t, st); !slices.Equal(got, []string{"changed-3", "flushed", "flushed-2"}) {
		t.Fatalf("outbox %q", got)
	}

	// Pending nil drops the record without an event.
	s = Write(t, st, id, 70, store.Commit{ChangeDue: 400}, setAttr("c", wire.Int(1)))
	if errs := st.Emit(ctx, []store.Emission{{ID: id, Version: s.Version}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if _, ok := pendingOf(t, st, id); ok {
		t.Fatal("Emit without a body left the change event pending")
	}
	if got := drainOutbox(t, st); len(got) != 0 {
		t.Fatalf("outbox %q, want nothing", got)
	}
}

// testPendingChangesPurge: purging a tombstone drops its pending record, and
// Emit for an id that is gone drops it too.
func testPendingChangesPurge(t *testing.T, st store.Store) {
	id := newID(t)
	Write(t, st, id, 10, store.Commit{}, start(wire.KindAnonymous, 0, 5000))
	Write(t, st, id, 20, store.Commit{ChangeDue: 100}, setAttr("a", wire.Int(1)))
	s := Write(t, st, id, 30, store.Commit{}, wire.Op{Code: wire.OpEnd, Reason: wire.EndAbandoned})
	if _, ok := pendingOf(t, st, id); !ok {
		t.Fatal("no pending change event")
	}
	if err := st.Purge(ctx, id, s.Version); err != nil {
		t.Fatal(err)
	}
	if _, ok := pendingOf(t, st, id); ok {
		t.Fatal("purge left the pending change event")
	}
	for _, bid := range BoundaryIDs() {
		Write(t, st, bid, 10, store.Commit{}, start(wire.KindAnonymous, 0, 0))
		Write(t, st, bid, 20, store.Commit{ChangeDue: 50}, setAttr("a", wire.Int(1)))
	}
	due, err := st.ChangesDue(ctx, 51, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []wire.ID
	for _, d := range due {
		got = append(got, d.ID)
	}
	if m := missing(BoundaryIDs(), got); len(m) != 0 {
		t.Fatalf("ChangesDue misses %v", hexIDs(m))
	}
}
