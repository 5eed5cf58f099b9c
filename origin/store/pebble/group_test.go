package pebble

import (
	"context"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func fsyncs(t *testing.T, s *Store) uint64 {
	var m dto.Metric
	if err := s.db.Metrics().LogWriter.FsyncLatency.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestGroupCommit verifies that concurrent durable commits share WAL fsyncs:
// every Commit waits for an fsync covering its batch, yet 64 committers
// cause far fewer fsyncs than commits.
func TestGroupCommit(t *testing.T) {
	s := openStore(t, Config{})
	before := fsyncs(t, s)
	const writers, each = 64, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				id, _ := wire.NewID()
				d := &wire.Delta{ID: id, Version: 1, At: 1, Ops: []wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1}}}
				next, _ := wire.Apply(nil, d, &wire.DefaultLimits)
				if err := s.Commit(context.Background(), &store.Commit{Delta: d, Session: next}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := fsyncs(t, s) - before
	t.Logf("%d durable commits, %d WAL fsyncs: %.1f commits per fsync", writers*each, n, float64(writers*each)/float64(n))
	// Without grouping every commit would need its own fsync; on a loaded
	// machine fewer committers are ready when a sync starts (about 20 commits
	// share one when quiet, 4 under load), so the bound only asks for sharing.
	if n == 0 || n > writers*each/2 {
		t.Fatalf("%d fsyncs for %d commits: syncs are not grouped", n, writers*each)
	}
}
