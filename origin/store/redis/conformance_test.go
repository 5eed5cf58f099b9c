package redis

import (
	"strconv"
	"testing"

	"github.com/sessionedge/sessionedge/origin/internal/redistest"
	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/origin/store/storetest"
)

// TestConformance runs the store conformance suite on a standalone Redis
// and on a Redis Cluster of three masters. Each subtest gets an empty
// keyspace of its own (a fresh key prefix) on the same servers.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bool
	}{{"standalone", false}, {"cluster", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var urls []string
			if tc.cluster {
				urls = urlsOf(redistest.StartCluster(t, 3, redistest.Options{}).Addrs()...)
			} else {
				urls = urlsOf(redistest.Start(t, redistest.Options{}).Addr)
			}
			n := 0
			storetest.Run(t, func(t *testing.T) store.Store {
				n++
				s, err := New(Config{URLs: urls, Prefix: "t" + strconv.Itoa(n), Shards: 8, TombstoneTTL: storetest.TombstoneTTL})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
