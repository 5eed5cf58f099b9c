package redis

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/redis/rueidis"

	"github.com/sessionedge/sessionedge/origin/internal/redistest"
	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/origin/store/pebble"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The backends side by side, in one run, with the same load (16 goroutines
// per core): the Redis store with and without its read cache, the embedded
// Pebble store, and raw Redis GET/SET of the same encoded session bytes.
// scripts/bench-redis.sh prints the comparison.

const benchSessions = 1000

func benchSession(id wire.ID) (*wire.Delta, *wire.Session) {
	d := &wire.Delta{ID: id, Version: 1, At: 1_767_225_600_000, Ops: []wire.Op{
		{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1, Hard: 1_767_312_000_000},
		{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("EUR")},
		{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-0123456789")},
		{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "segment", Value: wire.Text("returning-customer")},
	}}
	s, err := wire.Apply(nil, d, &wire.DefaultLimits)
	if err != nil {
		panic(err)
	}
	return d, s
}

type backend struct {
	name string
	st   store.Store
	rs   *Store // for round trips
}

func benchBackends(b *testing.B) ([]backend, rueidis.Client, []wire.ID) {
	srv := redistest.Start(b, redistest.Options{})
	cached := newStore(b, Config{URLs: []string{"redis://" + srv.Addr}, Prefix: "c"})
	uncached := newStore(b, Config{URLs: []string{"redis://" + srv.Addr}, Prefix: "u", CacheBytes: -1})
	pb, err := pebble.Open(pebble.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pb.Close() })
	raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(raw.Close)
	bs := []backend{{"redis-store-cached", cached, cached}, {"redis-store-uncached", uncached, uncached}, {"pebble-store", pb, nil}}
	ids := make([]wire.ID, benchSessions)
	ctx := context.Background()
	for i := range ids {
		ids[i], _ = wire.NewID()
		d, s := benchSession(ids[i])
		for _, be := range bs {
			if err := be.st.Commit(ctx, &store.Commit{Delta: d, Session: s}); err != nil {
				b.Fatal(err)
			}
		}
		if err := raw.Do(ctx, raw.B().Set().Key("raw:"+ids[i].String()).Value(rueidis.BinaryString(wire.AppendSession(nil, s))).Build()).Error(); err != nil {
			b.Fatal(err)
		}
	}
	return bs, raw, ids
}

// parallel runs op on the bench sessions in turn under b.RunParallel, 16
// goroutines per core; n counts the calls so far. With rs, it reports rs's
// round trips per op.
func parallel(b *testing.B, ids []wire.ID, rs *Store, op func(id wire.ID, n uint64) error) {
	var n atomic.Uint64
	before := int64(0)
	if rs != nil {
		before = rs.RoundTrips()
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := op(ids[i%benchSessions], i); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if rs != nil {
		b.ReportMetric(float64(rs.RoundTrips()-before)/float64(b.N), "roundtrips/op")
	}
}

// onBackends runs op under parallel on every store of bs, a sub-benchmark
// each.
func onBackends(b *testing.B, bs []backend, ids []wire.ID, op func(st store.Store, id wire.ID, n uint64) error) {
	for _, be := range bs {
		b.Run(be.name, func(b *testing.B) {
			parallel(b, ids, be.rs, func(id wire.ID, n uint64) error { return op(be.st, id, n) })
		})
	}
}

func BenchmarkGet(b *testing.B) {
	bs, raw, ids := benchBackends(b)
	ctx := context.Background()
	onBackends(b, bs, ids, func(st store.Store, id wire.ID, _ uint64) error {
		_, err := st.Get(ctx, id)
		return err
	})
	b.Run("raw-redis-GET", func(b *testing.B) {
		parallel(b, ids, nil, func(id wire.ID, _ uint64) error {
			_, err := raw.Do(ctx, raw.B().Get().Key("raw:"+id.String()).Build()).AsBytes()
			return err
		})
	})
}

func BenchmarkPatch(b *testing.B) {
	bs, raw, ids := benchBackends(b)
	ctx := context.Background()
	onBackends(b, bs, ids, func(st store.Store, id wire.ID, n uint64) error {
		for {
			cur, err := st.Get(ctx, id)
			if err != nil {
				return err
			}
			d := &wire.Delta{ID: id, BaseVersion: cur.Version, Version: cur.Version + 1, At: 1_767_225_601_000,
				Ops: []wire.Op{{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "n", Value: wire.Int(int64(n))}}}
			next, err := wire.Apply(cur, d, &wire.DefaultLimits)
			if err != nil {
				return err
			}
			if err = st.Commit(ctx, &store.Commit{Delta: d, Session: next, Prev: cur}); !isConflict(err) {
				return err
			}
		}
	})
	_, s := benchSession(ids[0])
	enc := rueidis.BinaryString(wire.AppendSession(nil, s))
	b.Run("raw-redis-SET", func(b *testing.B) {
		parallel(b, ids, nil, func(id wire.ID, _ uint64) error {
			return raw.Do(ctx, raw.B().Set().Key("raw:"+id.String()).Value(enc).Build()).Error()
		})
	})
}

func isConflict(err error) bool { return err != nil && errorsIs(err, store.ErrConflict) }

var errorsIs = errors.Is
