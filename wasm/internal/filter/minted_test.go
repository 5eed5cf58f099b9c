//go:build !wasip1

package filter_test

import (
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// TestMintedRecordNamesItsSession: the record another VM published in the
// slot of a session id (the ring of captured values of minted sessions)
// is taken only when it names that session: a later mint whose id falls
// on the same slot replaced it, and its values are not this session's.
func TestMintedRecordNamesItsSession(t *testing.T) {
	o := proxytest.NewOrigin(proxytest.Start)
	o.APIKey = "edge-key"
	cfg := proxytest.Config(`,"capture":{"query":["utm_campaign"]}`)
	e := proxytest.NewEnv(t, newNative, o)
	e.MustConfigure(cfg)
	vm := e.G.(*proxytest.Native).VM
	now := e.Now().Unix()
	publish := func(slotOf, names wire.ID, campaign string) {
		rec := wire.AppendTouches(nil, []wire.Touch{{ID: names, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now * 1000,
			IdleDeadline: (now + 3600) * 1000, HardDeadline: (now + 86400) * 1000,
			Init: []wire.Op{{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "utm_campaign", Value: wire.Text(campaign)}}}})
		abi.Use(e.M)
		if st := abi.SetSharedData(vm.MintedKey(1, slotOf), rec, 0); st != abi.StatusOK {
			t.Fatal(st)
		}
	}
	campaign := func(id wire.ID) string {
		s := e.Request("GET", "/next", nil, "cookie", "__Host-sid="+proxytest.Token(wire.Claims{Kind: wire.KindAnonymous, ID: id,
			Generation: 1, IssuedAt: now, IdleDeadline: now + 3600, HardDeadline: now + 86400}))
		e.Serve() // 404: the origin has not heard of it
		v, _ := proxytest.ForwardedView(t, s)
		c, _ := v.Attr(wire.NamespacePublic, "utm_campaign")
		return c.Text
	}
	mine, other, next := newID(t), newID(t), newID(t)
	publish(mine, other, "other")
	if got := campaign(mine); got != "" {
		t.Fatalf("the session got the captured values of the session that replaced its record: %q", got)
	}
	publish(next, next, "spring")
	if got := campaign(next); got != "spring" {
		t.Fatalf("the session's own record was not taken: %q", got)
	}
}

func newID(t *testing.T) wire.ID {
	id, err := wire.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
