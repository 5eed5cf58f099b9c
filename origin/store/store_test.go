package store

import (
	"math"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestDueAt(t *testing.T) {
	const ttl = 3_600_000
	for _, tc := range []struct {
		name string
		s    wire.Session
		ttl  int64
		want int64
	}{
		{"live: idle first", wire.Session{Kind: wire.KindAnonymous, IdleDeadline: 10, HardDeadline: 20}, ttl, 10},
		{"live: hard first", wire.Session{Kind: wire.KindCustomer, IdleDeadline: 30, HardDeadline: 20}, ttl, 20},
		{"live shared: idle is no action", wire.Session{Kind: wire.KindShared, IdleDeadline: 10}, ttl, 0},
		{"live: no deadline", wire.Session{Kind: wire.KindAnonymous}, ttl, 0},
		{"tombstone, generation 1: hard deadline", wire.Session{Generation: 1, Ended: wire.EndRevoked, LastSeen: 100, HardDeadline: 5000}, ttl, 5000},
		{"tombstone, no hard deadline: end + TTL", wire.Session{Generation: 1, Ended: wire.EndRevoked, LastSeen: 100}, ttl, 100 + ttl},
		{"tombstone, generation 2: end + TTL", wire.Session{Generation: 2, Ended: wire.EndRevoked, LastSeen: 100, HardDeadline: 5000}, ttl, 100 + ttl},
		{"tombstone, generation 2: hard deadline later", wire.Session{Generation: 2, Ended: wire.EndRevoked, LastSeen: 100, HardDeadline: 2 * ttl}, ttl, 2 * ttl},
		{"tombstone: an enormous TTL stops at year 9999", wire.Session{Generation: 1, Ended: wire.EndRevoked, LastSeen: 100}, math.MaxInt64, wire.MaxTime},
	} {
		if got := DueAt(&tc.s, tc.ttl); got != tc.want {
			t.Errorf("%s: DueAt = %d, want %d", tc.name, got, tc.want)
		}
	}
}
