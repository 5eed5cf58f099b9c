package pebble

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// BenchmarkCommitParallel measures durable commits from 64 goroutines on
// distinct sessions: Pebble groups their WAL syncs.
func BenchmarkCommitParallel(b *testing.B) {
	s := openStore(b, Config{})
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id, _ := wire.NewID()
		d := &wire.Delta{ID: id, Version: 1, At: 1, Ops: []wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1}}}
		cur, err := wire.Apply(nil, d, &wire.DefaultLimits)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Commit(ctx, &store.Commit{Delta: d, Session: cur}); err != nil {
			b.Fatal(err)
		}
		for pb.Next() {
			d := &wire.Delta{ID: id, BaseVersion: cur.Version, Version: cur.Version + 1, At: 2,
				Ops: []wire.Op{{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "n", Value: wire.Int(n.Add(1))}}}
			next, err := wire.Apply(cur, d, &wire.DefaultLimits)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Commit(ctx, &store.Commit{Delta: d, Session: next}); err != nil {
				b.Fatal(err)
			}
			cur = next
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkGetHit measures a cache hit.
func BenchmarkGetHit(b *testing.B) {
	s := openStore(b, Config{})
	id, _ := wire.NewID()
	d := &wire.Delta{ID: id, Version: 1, At: 1, Ops: []wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1}}}
	cur, _ := wire.Apply(nil, d, &wire.DefaultLimits)
	s.Commit(context.Background(), &store.Commit{Delta: d, Session: cur})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Get(context.Background(), id)
	}
}

// BenchmarkRawSyncedBatch is the floor under BenchmarkCommitParallel: the
// same number of goroutines commit synced Pebble batches of about the same
// bytes (a session, a change-log entry, an index key) straight to the
// database, with none of the store's work.
func BenchmarkRawSyncedBatch(b *testing.B) {
	s := openStore(b, Config{})
	var seq atomic.Uint64
	val := make([]byte, 300)
	delta := make([]byte, 60)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id, _ := wire.NewID()
		for pb.Next() {
			batch := s.db.NewBatch()
			batch.Set(sessionKey(id), val, nil)
			batch.Set(logKey(1<<40+seq.Add(1)), delta, nil)
			batch.Set(dueKey(1, id), nil, nil)
			if err := s.db.Apply(batch, s.wo); err != nil {
				b.Fatal(err)
			}
			batch.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
