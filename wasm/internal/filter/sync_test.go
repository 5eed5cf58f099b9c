//go:build !wasip1

package filter_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/filter"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// Two VMs that publish the same sequence of the sync ring at the same time
// (the first two publishers of a new ring, or a lease holder and the VM
// whose poll was still in flight when its lease ran out) leave states the
// scenarios cannot produce: their callbacks never overlap. These tests
// write the other VM's part into shared data as it would, with the abi
// functions the guest uses.

const (
	headKey = "sessionedge/sync/origin/head"
	slotKey = "sessionedge/sync/origin/slot"
)

// syncVM is one configured VM holding the sync lease, with a session
// (currency EUR, version 1) it cached after publishing the first batch at
// cursor "1".
func syncVM(t *testing.T) (*proxytest.Env, *proxytest.Origin, wire.ID, string) {
	o := proxytest.NewOrigin(proxytest.Start)
	o.APIKey = "edge-key"
	e := proxytest.NewEnv(t, newNative, o)
	e.MustConfigure(proxytest.Config(`,"sync":{"interval":"100ms"}`))
	id, _ := wire.NewID()
	if _, err := o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("EUR")}); err != nil {
		t.Fatal(err)
	}
	now := e.Now().Unix()
	cookie := "__Host-sid=" + proxytest.Token(wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now,
		IdleDeadline: now + 1800, HardDeadline: now + 3600})
	e.Tick()
	e.Serve()
	if seq, cursor := readHead(t, e); seq != 1 || cursor != "1" {
		t.Fatalf("head %d %q after the first poll", seq, cursor)
	}
	e.Request("GET", "/", nil, "cookie", cookie).Finish()
	e.Serve()
	return e, o, id, cookie
}

func readHead(t *testing.T, e *proxytest.Env) (uint64, string) {
	t.Helper()
	abi.Use(e.M)
	b, _, st := abi.GetSharedData(headKey)
	if st != abi.StatusOK || len(b) < 8 {
		t.Fatalf("no head: %v", st)
	}
	return binary.BigEndian.Uint64(b), string(b[8:])
}

func currency(t *testing.T, e *proxytest.Env, cookie string) string {
	t.Helper()
	s := e.Request("GET", "/", nil, "cookie", cookie)
	e.Serve()
	return s.Header("x-session-currency")
}

// TestSyncOutOfStep: the lease holder's position names another batch than
// the shared head at the same sequence (the other publisher's head write
// came last). Before, the holder waited for itself to catch up before
// polling, follow found nothing newer, and it renewed its lease: no VM of
// the proxy polled again and every cached session stayed as it was,
// without a log line or a fetch. Now it starts over from the head.
func TestSyncOutOfStep(t *testing.T) {
	e, o, id, cookie := syncVM(t)
	abi.Use(e.M)
	_, cas, _ := abi.GetSharedData(headKey)
	if st := abi.SetSharedData(headKey, append(binary.BigEndian.AppendUint64(nil, 1), "0"...), cas); st != abi.StatusOK {
		t.Fatal(st)
	}
	o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("GBP")})
	polls := o.Polls
	for i := 0; i < 10; i++ {
		e.Advance(100 * time.Millisecond)
		e.Tick()
		e.Serve()
	}
	if o.Polls == polls {
		t.Fatal("the lease holder stopped polling")
	}
	if got := currency(t, e, cookie); got != "GBP" {
		t.Fatalf("currency %q: the feed stopped for this VM", got)
	}
	if !e.Logged("out of step") || e.Metric("sessionedge_feed_resyncs_total") != 1 {
		t.Fatalf("resync not logged and counted: %d %v", e.Metric("sessionedge_feed_resyncs_total"), e.Logs())
	}
}

// TestSyncPublishFinishesAnother: another VM publishes the next sequence
// from the same head while this VM's poll is in flight; its slot is
// written, its head not yet. Before, this VM overwrote the slot and moved
// the head to its own batch, so the other VM's head write failed and the
// VMs that had read the slot in between followed a batch the head does not
// name. Now this VM finishes the other's publication and follows it.
func TestSyncPublishFinishesAnother(t *testing.T) {
	e, o, id, cookie := syncVM(t)
	o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("GBP")})
	e.Advance(100 * time.Millisecond)
	e.Tick() // polls from cursor 1
	other := wire.AppendBatch(nil, &wire.Batch{Cursor: "2", Deltas: []wire.Delta{o.Log[1]}})
	abi.Use(e.M)
	key := slotKey + "2"
	if st := abi.SetSharedData(key, filter.AppendSlot(nil, 2, "1", "2", other), 0); st != abi.StatusOK {
		t.Fatal(st)
	}
	o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("CHF")})
	e.Serve() // this VM's answer: both writes, cursor 3
	abi.Use(e.M)
	b, _, _ := abi.GetSharedData(key)
	if seq, prev, after, _, ok := filter.ParseSlot(b); !ok || seq != 2 || prev != "1" || after != "2" {
		t.Fatalf("slot 2: %d %q→%q (%v), want the other VM's batch 1→2", seq, prev, after, ok)
	}
	if seq, cursor := readHead(t, e); seq != 2 || cursor != "2" {
		t.Fatalf("head %d %q, want the other VM's batch (2 at cursor 2)", seq, cursor)
	}
	for i := 0; i < 3; i++ {
		e.Advance(100 * time.Millisecond)
		e.Tick()
		e.Serve()
	}
	n := len(o.Requests)
	if got := currency(t, e, cookie); got != "CHF" {
		t.Fatalf("currency %q after following the other VM's batch", got)
	}
	for _, r := range o.Requests[n:] {
		if r != "POST /v1/sync/touch" {
			t.Fatalf("origin calls %v: the VM did not follow the feed", o.Requests[n:])
		}
	}
	if got := e.Metric("sessionedge_feed_resyncs_total"); got != 0 {
		t.Fatalf("%d resyncs", got)
	}
}
