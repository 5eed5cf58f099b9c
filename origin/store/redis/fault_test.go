package redis

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/internal/redistest"
	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestRestartUnderWriteLoad kills a Redis node (SIGKILL) while writers keep
// committing, brings it back on the same append-only file, and checks that
// every acknowledged write is there and that the store recovered by itself.
// Persistence mode: appendonly yes, appendfsync always (docs/redis.md).
func TestRestartUnderWriteLoad(t *testing.T) {
	eachTopology(t, redistest.Options{AppendOnly: true}, func(t *testing.T, urls []string, victim *redistest.Server) {
		st := newStore(t, Config{URLs: urls, Shards: 8})

		const writers = 8
		var (
			acked   sync.Map // wire.ID → last acknowledged version
			ackN    atomic.Int64
			failedN atomic.Int64
			stop    = make(chan struct{})
			wg      sync.WaitGroup
		)
		for w := 0; w < writers; w++ {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					id, _ := wire.NewID()
					var cur *wire.Session
					for v := uint64(1); v <= 3; v++ {
						d := &wire.Delta{ID: id, BaseVersion: v - 1, Version: v, At: time.Now().UnixMilli(),
							Ops: []wire.Op{{Code: wire.OpSetAttr, Key: "n", Value: wire.Int(int64(v))}}}
						if v == 1 {
							d.Ops = append([]wire.Op{startOp()}, d.Ops...)
						}
						next, err := wire.Apply(cur, d, &wire.DefaultLimits)
						if err != nil {
							t.Error(err)
							return
						}
						ctx, cancel := context.WithTimeout(context.Background(), time.Second)
						err = st.Commit(ctx, &store.Commit{Delta: d, Session: next})
						cancel()
						if err != nil {
							if !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrConflict) {
								t.Errorf("commit failed with %v, want ErrUnavailable while Redis is down", err)
							}
							failedN.Add(1)
							break // this session stops here; its acked versions stand
						}
						acked.Store(id, v)
						ackN.Add(1)
						cur = next
					}
				}
			})
		}
		time.Sleep(300 * time.Millisecond)
		victim.Stop()
		time.Sleep(500 * time.Millisecond)
		victim.Restart(t)
		time.Sleep(700 * time.Millisecond) // writes flow again
		close(stop)
		wg.Wait()
		if failedN.Load() == 0 {
			t.Fatal("no write failed: the node was not really down")
		}

		// Every acknowledged version must be there (a later, unacknowledged
		// one may be too: a commit can succeed just as the client times out).
		checked := 0
		deadline := time.Now().Add(10 * time.Second)
		acked.Range(func(k, v any) bool {
			id, want := k.(wire.ID), v.(uint64)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				got, err := st.Get(ctx, id)
				cancel()
				if err == nil {
					if got.Version < want {
						t.Errorf("session %s at version %d, but version %d was acknowledged", id, got.Version, want)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("session %s unreadable after the restart: %v", id, err)
					return false
				}
				time.Sleep(50 * time.Millisecond)
			}
			checked++
			return true
		})
		// The store works again without being recreated.
		id, _ := wire.NewID()
		write(t, st, id, startOp())
		t.Logf("%d writes acknowledged, %d failed while the node was down; %d sessions checked", ackN.Load(), failedN.Load(), checked)
	})
}
