package pebble

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/origin/store/storetest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"u", "v"},
		{"u\x03abc", "u\x03abd"},
		{"u\x01\xff", "u\x02"},
		{"u\xfe\xff\xff", "u\xff"},
		{"\x00", "\x01"},
		{"\xff", ""},
		{"\xff\xff\xff", ""},
		{"", ""},
	} {
		got := prefixEnd([]byte(tc.in))
		if tc.want == "" && got != nil || tc.want != "" && string(got) != tc.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// Every key that starts with the prefix sorts below the bound.
		for _, tail := range []string{"", "\x00", "\xff", "\xff\xff\xff\xff"} {
			k := []byte(tc.in + tail)
			if got != nil && bytes.Compare(k, got) >= 0 {
				t.Errorf("key %q is not below prefixEnd(%q) = %q", k, tc.in, got)
			}
		}
	}
}

// TestCorruptSessionIsLogged breaks a stored session behind the store's
// back: opening the store and reading the session log the id and the cause.
func TestCorruptSessionIsLogged(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir})
	id, _ := wire.NewID()
	commitNew(t, s, id)
	if err := s.db.Set(sessionKey(id), []byte{0xa1, 0xff}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	buf := &testbin.Buffer{}
	s = openStore(t, Config{Dir: dir, Logger: buf.Logger()})
	if _, err := s.Get(context.Background(), id); err == nil {
		t.Fatal("Get of a corrupt session succeeded")
	}
	out := buf.String()
	if !strings.Contains(out, "stored session is corrupt") || !strings.Contains(out, id.String()) || !strings.Contains(out, "err=\"wire: session") {
		t.Fatalf("the log does not name the corrupt session and the cause:\n%s", out)
	}
}

// TestPebbleMessagesAreLogged checks that what Pebble reports reaches the
// store's logger: its background errors, and a fatal error (which also
// panics, since Pebble does not expect Fatalf to return).
func TestPebbleMessagesAreLogged(t *testing.T) {
	buf := &testbin.Buffer{}
	log := buf.Logger()
	eventListener(log).BackgroundError(errors.New("compaction failed: disk on fire"))
	pebbleLogger{log}.Infof("background error: %s", "flush failed")
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Fatalf returned")
			}
		}()
		pebbleLogger{log}.Fatalf("pebble: fatal commit error: %v", "WAL gone")
	}()
	out := buf.String()
	for _, want := range []string{"disk on fire", "flush failed", "WAL gone"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "level=ERROR") {
		t.Errorf("errors are not logged as errors:\n%s", out)
	}
}

// TestGetAtLeastBypassesStaleCache changes a session in Pebble behind the
// cache: Get answers the cached copy, GetAtLeast the newer stored one (and
// caches it).
func TestGetAtLeastBypassesStaleCache(t *testing.T) {
	s := openStore(t, Config{})
	ctx := context.Background()
	id, _ := wire.NewID()
	commitNew(t, s, id)
	cur, _ := s.Get(ctx, id)
	next := cur.Clone()
	next.Version = 2
	if err := s.db.Set(sessionKey(id), wire.AppendSession(nil, next), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, id); got.Version != 1 {
		t.Fatalf("Get = version %d, want the cached 1", got.Version)
	}
	if got, err := s.GetAtLeast(ctx, id, 2); err != nil || got.Version != 2 {
		t.Fatalf("GetAtLeast(2) = %v, %v", got, err)
	}
	if _, enc, err := s.GetCBORAtLeast(ctx, id, 2); err != nil || string(enc) != string(wire.AppendSession(nil, next)) {
		t.Fatalf("GetCBORAtLeast(2): %v", err)
	}
	if got, _ := s.Get(ctx, id); got.Version != 2 {
		t.Fatalf("after GetAtLeast, Get = version %d, want 2", got.Version)
	}
}

// TestStaleExpiryEntriesAreDropped plants expiry-index entries that match
// no session (gone, or indexed at another instant, as after a change of
// TombstoneTTL): Expiring skips and deletes them, and keeps the true one.
func TestStaleExpiryEntriesAreDropped(t *testing.T) {
	s := openStore(t, Config{})
	ctx := context.Background()
	id, _ := wire.NewID()
	storetest.Write(t, s, id, 1, store.Commit{}, wire.Op{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1, Idle: 500})
	gone, _ := wire.NewID()
	for _, k := range [][]byte{dueKey(100, gone), dueKey(200, id)} {
		if err := s.db.Set(k, nil, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	due, err := s.Expiring(ctx, 1000, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0] != (store.Due{ID: id, At: 500}) {
		t.Fatalf("Expiring = %+v, want only the session's own entry", due)
	}
	it, _ := s.db.NewIter(prefixRange([]byte{prefixDue}))
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	it.Close()
	if n != 1 {
		t.Fatalf("%d expiry-index entries left, want 1", n)
	}
}
