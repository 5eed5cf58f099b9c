package cache

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// heapSession is a decoded session of attrs public attributes, as a store
// holds it after a read: the session and its CBOR encoding.
func heapSession(t *testing.T, attrs int) (*wire.Session, []byte) {
	t.Helper()
	s := &wire.Session{ID: newID(t), Kind: wire.KindCustomer, Generation: 2, Version: 9}
	s.Fields[wire.FieldCustomerID] = wire.Text("customer-4711")
	s.Fields[wire.FieldCurrency] = wire.Text("EUR")
	s.Fields[wire.FieldSiteCode] = wire.Text("main")
	var pub wire.Attrs
	for i := range attrs {
		pub = append(pub, wire.Attr{Key: "attr" + strconv.Itoa(i), Value: wire.Text("value-" + strconv.Itoa(i))})
	}
	s.Attrs[wire.NamespacePublic] = wire.Map(pub...).Map
	enc := wire.AppendSession(nil, s)
	var back wire.Session
	if err := wire.DecodeSession(enc, &back); err != nil {
		t.Fatal(err)
	}
	return &back, enc
}

// TestCostFollowsHeap: what a full cache counts against its budget stays
// close to the heap it holds, for sessions of few and of many attributes,
// so a budget bounds memory whatever the sessions hold.
func TestCostFollowsHeap(t *testing.T) {
	for _, attrs := range []int{0, 6, 40, 200} {
		const n = 2000
		c := New(Config{MaxBytes: 1 << 40})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			c.Put(heapSession(t, attrs))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(after.HeapAlloc-before.HeapAlloc) / n
		cost := float64(c.Stats().Bytes) / n
		t.Logf("%d attributes: %.0f bytes of heap, %.0f counted per entry (%.2f)", attrs, heap, cost, cost/heap)
		if cost < 0.8*heap || cost > 1.5*heap {
			t.Errorf("%d attributes: an entry holds %.0f bytes of heap but counts %.0f", attrs, heap, cost)
		}
		runtime.KeepAlive(c)
	}
}
