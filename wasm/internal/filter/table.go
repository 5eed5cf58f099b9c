package filter

// table maps uint64 keys to pointers: open addressing with linear probing
// and deletion by backward shift (no tombstones), at most half full. It
// replaces Go maps on the per-request path (streams, cached sessions and
// tokens): a Go map in a wasm guest hashes with the runtime's portable
// fallback and walks several functions per lookup, this costs one multiply
// and, usually, one probe. A nil value means an empty slot.
type table[V any] struct {
	keys  []uint64
	vals  []*V
	n     int
	shift uint8 // 64 − log2(len(keys))
}

// fib is 2^64 / φ: multiplying by it spreads sequential keys (stream ids)
// over the high bits, which pick the slot.
const fib = 0x9E3779B97F4A7C15

func (t *table[V]) slot(k uint64) uint64 { return (k * fib) >> t.shift }

// get returns the value of k, or nil.
func (t *table[V]) get(k uint64) *V {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.keys) - 1)
	for i := t.slot(k); ; i = (i + 1) & mask {
		v := t.vals[i]
		if v == nil || t.keys[i] == k {
			return v
		}
	}
}

// set stores v (not nil) under k, replacing what k held.
func (t *table[V]) set(k uint64, v *V) {
	if 2*(t.n+1) > len(t.keys) {
		t.grow()
	}
	mask := uint64(len(t.keys) - 1)
	for i := t.slot(k); ; i = (i + 1) & mask {
		if t.vals[i] == nil {
			t.keys[i], t.vals[i] = k, v
			t.n++
			return
		}
		if t.keys[i] == k {
			t.vals[i] = v
			return
		}
	}
}

// del removes k; later keys of its probe run move back into the hole.
func (t *table[V]) del(k uint64) {
	if t.n == 0 {
		return
	}
	mask := uint64(len(t.keys) - 1)
	i := t.slot(k)
	for {
		if t.vals[i] == nil {
			return
		}
		if t.keys[i] == k {
			break
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; t.vals[j] != nil; j = (j + 1) & mask {
		// The entry at j may fill the hole at i if its home slot does not
		// lie cyclically in (i, j].
		if h := t.slot(t.keys[j]); (j-h)&mask >= (j-i)&mask {
			t.keys[i], t.vals[i] = t.keys[j], t.vals[j]
			i = j
		}
	}
	t.keys[i], t.vals[i] = 0, nil
	t.n--
}

// any returns some key and value of a non-empty table, starting the search
// at the slot of hint: an arbitrary victim for eviction.
func (t *table[V]) any(hint uint64) (uint64, *V) {
	mask := uint64(len(t.keys) - 1)
	for i := t.slot(hint); ; i = (i + 1) & mask {
		if v := t.vals[i]; v != nil {
			return t.keys[i], v
		}
	}
}

func (t *table[V]) len() int { return t.n }

func (t *table[V]) clear() {
	clear(t.keys)
	clear(t.vals)
	t.n = 0
}

func (t *table[V]) grow() {
	size := 2 * len(t.keys)
	if size < 16 {
		size = 16
	}
	keys, vals := t.keys, t.vals
	t.keys, t.vals, t.n = make([]uint64, size), make([]*V, size), 0
	t.shift = uint8(64 - log2(size))
	for i, v := range vals {
		if v != nil {
			t.set(keys[i], v)
		}
	}
}

func log2(n int) int {
	b := 0
	for n > 1 {
		n >>= 1
		b++
	}
	return b
}
