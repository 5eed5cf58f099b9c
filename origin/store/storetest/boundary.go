package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// BoundaryIDs returns ids whose bytes sit at the edges of byte order: all
// 00, all ff, and each of 00, 7f, 80, fe, ff as the first and as the last
// byte, the other bytes 00, 5a or ff.
func BoundaryIDs() []wire.ID {
	edges := []byte{0x00, 0x7f, 0x80, 0xfe, 0xff}
	fills := []byte{0x00, 0x5a, 0xff}
	seen := map[wire.ID]bool{}
	var ids []wire.ID
	add := func(id wire.ID) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, f := range fills {
		for _, e := range edges {
			var first, last wire.ID
			for i := range first {
				first[i], last[i] = f, f
			}
			first[0], last[wire.IDLen-1] = e, e
			add(first)
			add(last)
		}
	}
	return ids
}

func testBoundaryGetTouchPurge(t *testing.T, st store.Store) {
	for _, id := range BoundaryIDs() {
		commit(t, st, id, 1000, nil, start(wire.KindAnonymous, 5000, 9000))
		got, err := st.Get(ctx, id)
		if err != nil || got.ID != id {
			t.Fatalf("Get(%x) = %v, %v", id[:], got, err)
		}
		if got, err = st.Touch(ctx, id, 2000, 6000); err != nil || got.IdleDeadline != 6000 {
			t.Fatalf("Touch(%x) = %+v, %v", id[:], got, err)
		}
		ended := commit(t, st, id, 3000, nil, wire.Op{Code: wire.OpEnd, Reason: wire.EndAbandoned})
		if err := st.Purge(ctx, id, ended.Version); err != nil {
			t.Fatalf("Purge(%x) = %v", id[:], err)
		}
		if _, err := st.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(%x) after purge = %v", id[:], err)
		}
	}
	if due, _ := st.Expiring(ctx, 1<<50, 1000); len(due) != 0 {
		t.Fatalf("index entries left after purging every boundary id: %+v", due)
	}
}

func login(cid string, gen uint32) wire.Op {
	return wire.Op{Code: wire.OpLogin, CustomerID: cid, Generation: gen}
}

func sortIDs(ids []wire.ID) []wire.ID {
	out := append([]wire.ID(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	return out
}

func sameIDs(a, b []wire.ID) bool {
	return slices.Equal(sortIDs(a), sortIDs(b))
}

func testBoundaryCustomerIndex(t *testing.T, st store.Store) {
	ids := BoundaryIDs()
	for _, id := range ids {
		commit(t, st, id, 1, nil, start(wire.KindAnonymous, 0, 0), login("c-edge", 2))
	}
	got, err := st.CustomerSessions(ctx, "c-edge")
	if err != nil {
		t.Fatal(err)
	}
	if !sameIDs(got, ids) {
		t.Fatalf("CustomerSessions returned %d of %d boundary ids; missing %s", len(got), len(ids), hexIDs(missing(ids, got)))
	}
	// Ending them all empties the index.
	for _, id := range ids {
		commit(t, st, id, 2, nil, wire.Op{Code: wire.OpEnd, Reason: wire.EndRevoked})
	}
	if got, _ = st.CustomerSessions(ctx, "c-edge"); len(got) != 0 {
		t.Fatalf("after ending every session: %s", hexIDs(got))
	}
}

// hexIDs shows ids as hex, where their byte values matter.
func hexIDs(ids []wire.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprintf("%x", id[:])
	}
	return out
}

func missing(want, got []wire.ID) []wire.ID {
	have := map[wire.ID]bool{}
	for _, id := range got {
		have[id] = true
	}
	var out []wire.ID
	for _, id := range want {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

// testBoundaryCustomerIDs gives customers ids that are prefixes of each
// other, end at the edges of the bytes UTF-8 allows, or sit at the edges
// of a one-byte length: each lists only its own sessions.
func testBoundaryCustomerIDs(t *testing.T, st store.Store) {
	cids := []string{"c", "c\x00", "c\x00\x00", "c\x7f", "c\u0080", "c\U0010ffff", "c\U0010ffff\U0010ffff",
		"\U0010ffff", "\x00", strings.Repeat("c", 127), strings.Repeat("c", 128), strings.Repeat("c", 255), strings.Repeat("c", 256)}
	ids := BoundaryIDs()
	want := map[string][]wire.ID{}
	for i, id := range ids {
		cid := cids[i%len(cids)]
		commit(t, st, id, 1, nil, start(wire.KindAnonymous, 0, 0), login(cid, 2))
		want[cid] = append(want[cid], id)
	}
	for _, cid := range cids {
		got, err := st.CustomerSessions(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		if !sameIDs(got, want[cid]) {
			t.Fatalf("customer %q: got %s, want %s", cid, hexIDs(sortIDs(got)), hexIDs(sortIDs(want[cid])))
		}
	}
}

// testBoundaryExpiryIndex puts boundary ids at due instants just below, at
// and above the bound of a scan: exactly those below it come back, the
// earliest first.
func testBoundaryExpiryIndex(t *testing.T, st store.Store) {
	const bound = 1_000_000
	ids := BoundaryIDs()
	var want []store.Due
	for i, id := range ids {
		idle := int64(bound - 1 + i%3) // bound-1, bound, bound+1
		if i%5 == 0 {
			idle = 1 // the smallest instant indexed
		}
		commit(t, st, id, 0, nil, start(wire.KindAnonymous, idle, 0))
		if idle < bound {
			want = append(want, store.Due{ID: id, At: idle})
		}
	}
	got, err := st.Expiring(ctx, bound, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Expiring(%d) returned %d entries, want %d: %+v", bound, len(got), len(want), got)
	}
	for i := range got {
		if i > 0 && got[i].At < got[i-1].At {
			t.Fatalf("Expiring is not in time order: %+v", got)
		}
	}
	gotIDs, wantIDs := make([]wire.ID, len(got)), make([]wire.ID, len(want))
	for i := range got {
		gotIDs[i], wantIDs[i] = got[i].ID, want[i].ID
	}
	if !sameIDs(gotIDs, wantIDs) {
		t.Fatalf("Expiring(%d) missed %s", bound, hexIDs(missing(wantIDs, gotIDs)))
	}
	// Paging with a small limit reaches every entry up to a later bound.
	all, err := st.Expiring(ctx, bound+2, 1000)
	if err != nil || len(all) != len(ids) {
		t.Fatalf("Expiring(%d) = %d entries, %v; want %d", bound+2, len(all), err, len(ids))
	}
	if page, _ := st.Expiring(ctx, bound+2, 3); len(page) != 3 || page[0].At != 1 {
		t.Fatalf("a page of 3: %+v", page)
	}
}

func testBoundaryFeed(t *testing.T, st store.Store) {
	h := head(t, st)
	ids := BoundaryIDs()
	for _, id := range ids {
		commit(t, st, id, 1, nil, start(wire.KindAnonymous, 0, 0))
		commit(t, st, id, 2, nil, setAttr("n", wire.Int(1)))
	}
	seen, _ := ReadFeed(t, st, h, 5, 4*len(ids))
	for _, id := range ids {
		if v := seen[id]; len(v) != 2 || v[0] != 1 || v[1] != 2 {
			t.Fatalf("feed for %x: versions %v, want [1 2]", id[:], v)
		}
	}
}

// ReadFeed pages through the change log from cursor, limit deltas a page,
// until a page comes back empty, and returns the versions of each
// session's deltas in the order read and how many deltas it read. An
// error, a reset, or a feed that has not ended after maxPages pages fails
// the test.
func ReadFeed(t testing.TB, st store.Store, cursor store.Cursor, limit, maxPages int) (map[wire.ID][]uint64, int) {
	t.Helper()
	seen := map[wire.ID][]uint64{}
	total := 0
	for pages := 0; ; pages++ {
		if pages > maxPages {
			t.Fatal("the feed does not end")
		}
		bt, err := st.ChangesAfter(ctx, cursor, limit)
		if err != nil || bt.Reset {
			t.Fatalf("ChangesAfter: %v, reset %v", err, bt.Reset)
		}
		if len(bt.Deltas) == 0 {
			return seen, total
		}
		for _, d := range bt.Deltas {
			seen[d.ID] = append(seen[d.ID], d.Version)
			total++
		}
		cursor = bt.Cursor
	}
}

func testBoundaryOutbox(t *testing.T, st store.Store) {
	ids := BoundaryIDs()
	want := map[string]bool{}
	for _, id := range ids {
		body := fmt.Sprintf("event %x", id[:])
		want[body] = true
		commit(t, st, id, 1, [][]byte{[]byte(body)}, start(wire.KindAnonymous, 0, 0))
	}
	got := map[string]bool{}
	for tries := 0; len(got) < len(want) && tries < 10; tries++ {
		es, err := st.OutboxClaim(ctx, 7, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if got[string(e.Body)] {
				t.Fatalf("entry %q claimed twice", e.Body)
			}
			got[string(e.Body)] = true
			if err := st.OutboxDone(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for body := range want {
		if !got[body] {
			t.Fatalf("outbox entry %q never claimed (%d of %d)", body, len(got), len(want))
		}
	}
}

// testCustomerEveryFirstByte logs one customer into 1,000 sessions whose
// ids start with every byte value: CustomerSessions lists all of them.
func testCustomerEveryFirstByte(t *testing.T, st store.Store) {
	const n = 1000
	ids := make([]wire.ID, n)
	for i := range ids {
		ids[i] = newID(t)
		ids[i][0] = byte(i)
	}
	ids[n-1][0], ids[n-2][0] = 0xff, 0xff // several at the very end, too
	concurrently(t, 8, func(w int) error {
		for i := w; i < n; i += 8 {
			if _, err := tryCommit(st, ids[i], 1, nil, start(wire.KindAnonymous, 0, 0), login("c-many", 2)); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := st.CustomerSessions(ctx, "c-many")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || !sameIDs(got, ids) {
		m := missing(ids, got)
		t.Fatalf("CustomerSessions returned %d of %d sessions; %d missing, e.g. %s", len(got), n, len(m), hexIDs(m[:min(len(m), 3)]))
	}
}
