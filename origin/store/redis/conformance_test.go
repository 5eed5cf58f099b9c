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
	eachTopology(t, redistest.Options{}, func(t *testing.T, urls []string, _ *redistest.Server) {
		n := 0
		storetest.Run(t, func(t *testing.T) store.Store {
			n++
			return newStore(t, Config{URLs: urls, Prefix: "t" + strconv.Itoa(n), Shards: 8, TombstoneTTL: storetest.TombstoneTTL})
		})
	})
}

// eachTopology runs fn as a subtest on a standalone Redis and on a Redis
// Cluster of three masters, started with opts. node is one of the servers:
// the standalone one, or the cluster's second master.
func eachTopology(t *testing.T, opts redistest.Options, fn func(t *testing.T, urls []string, node *redistest.Server)) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.Start(t, opts)
		fn(t, urlsOf(srv.Addr), srv)
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t, 3, opts)
		fn(t, urlsOf(c.Addrs()...), c.Nodes[1])
	})
}
