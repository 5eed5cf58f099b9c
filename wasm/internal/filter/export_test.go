package filter

import "github.com/sessionedge/sessionedge/sdk/wire"

// White-box helpers for the external tests: states of the shared sync ring
// that only VMs running at the same time produce (two publishers of one
// sequence), written as another VM would write them.

// AppendSlot appends a sync ring slot as a VM publishes it.
func AppendSlot(dst []byte, seq uint64, prev, after string, batch []byte) []byte {
	return appendSlot(dst, seq, prev, after, batch)
}

// ParseSlot reads a sync ring slot.
func ParseSlot(b []byte) (seq uint64, prev, after string, batch []byte, ok bool) { return parseSlot(b) }

// RingSlots is the number of slots of the sync ring.
const RingSlots = ringSlots

// MintedKey returns the shared-data key under which the VMs of root's
// plugin publish what they captured for the session id they minted.
func (vm *VM) MintedKey(root uint32, id wire.ID) string { return vm.roots[root].mintedKey(&id) }
