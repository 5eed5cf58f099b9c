package wasmhost

import "github.com/sessionedge/sessionedge/proxywasm"

// HeaderMap is an ordered list of header pairs that keeps duplicates, like the
// maps a proxy-wasm guest sees. Keys are stored lower-case; lookups are
// case-insensitive. A HeaderMap reuses its storage after Reset, so a pooled map
// does not allocate once warm. The zero value is an empty map.
type HeaderMap struct {
	pairs []headerPair
	n     int
	size  int
}

type headerPair struct {
	key, value []byte
}

// Len returns the number of pairs.
func (m *HeaderMap) Len() int { return m.n }

// Reset empties the map and keeps its storage.
func (m *HeaderMap) Reset() { m.n, m.size = 0, 0 }

// Pair returns the i-th pair. The slices are owned by the map and valid until
// the map changes.
func (m *HeaderMap) Pair(i int) (key, value []byte) {
	p := &m.pairs[i]
	return p.key, p.value
}

// Add appends a pair; it returns proxywasm.ErrMapLimit when the map would exceed its caps.
func (m *HeaderMap) Add(key, value string) error {
	return addPair(m, key, value)
}

// AddBytes is Add for byte slices, which the map copies.
func (m *HeaderMap) AddBytes(key, value []byte) error {
	return addPair(m, key, value)
}

// Get returns the first value of key.
func (m *HeaderMap) Get(key string) (string, bool) {
	if i := m.index(key); i >= 0 {
		return string(m.pairs[i].value), true
	}
	return "", false
}

// Values returns every value of key in order.
func (m *HeaderMap) Values(key string) []string {
	var vs []string
	for i := 0; i < m.n; i++ {
		if equalFoldLower(m.pairs[i].key, key) {
			vs = append(vs, string(m.pairs[i].value))
		}
	}
	return vs
}

// Set replaces the first value of key and removes the others, or adds the pair
// when key is absent (Envoy's replace semantics).
func (m *HeaderMap) Set(key, value string) error {
	return setPair(m, key, value)
}

// Del removes every pair of key.
func (m *HeaderMap) Del(key string) { delPairs(m, key) }

// Clone returns a deep copy of m.
func (m *HeaderMap) Clone() *HeaderMap {
	c := &HeaderMap{}
	for i := 0; i < m.n; i++ {
		_ = c.AddBytes(m.pairs[i].key, m.pairs[i].value)
	}
	return c
}

// CopyFrom replaces the content of m with the content of src.
func (m *HeaderMap) CopyFrom(src *HeaderMap) {
	m.Reset()
	for i := 0; i < src.n; i++ {
		_ = m.AddBytes(src.pairs[i].key, src.pairs[i].value)
	}
}

func (m *HeaderMap) index(key string) int {
	for i := 0; i < m.n; i++ {
		if equalFoldLower(m.pairs[i].key, key) {
			return i
		}
	}
	return -1
}

// AppendSerialized appends the proxy-wasm encoding of m to dst (see
// package proxywasm for the layout).
func (m *HeaderMap) AppendSerialized(dst []byte) []byte {
	return proxywasm.AppendPairsFunc(dst, m.n, m.Pair)
}

// SerializedSize returns the length of m's encoding.
func (m *HeaderMap) SerializedSize() int { return proxywasm.PairsSize(m.n, m.size) }

// ParseSerialized replaces the content of m with the pairs encoded in data.
// Parsing is strict like Envoy's host core (proxywasm.PairIter) and a map of
// fewer than 4 bytes is malformed too. On error m is left empty and the
// error is proxywasm.ErrMapFormat or proxywasm.ErrMapLimit.
func (m *HeaderMap) ParseSerialized(data []byte) error {
	m.Reset()
	if err := checkSerialized(data); err != nil {
		return err
	}
	it := proxywasm.NewPairIter(data)
	for it.Next() {
		_ = m.AddBytes(it.Key(), it.Value()) // within the caps: checked above
	}
	return nil
}

// checkSerialized validates an encoded map without decoding it anywhere.
func checkSerialized(data []byte) error {
	if len(data) < 4 {
		return proxywasm.ErrMapFormat
	}
	it := proxywasm.NewPairIter(data)
	for it.Next() {
	}
	return it.Err()
}

func equalFoldLower[T ~string | ~[]byte](stored []byte, key T) bool {
	if len(stored) != len(key) {
		return false
	}
	for i := 0; i < len(stored); i++ {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if stored[i] != c {
			return false
		}
	}
	return true
}

func appendLower[T ~string | ~[]byte](dst []byte, s T) []byte {
	// Copy, then lower in place: one append instead of one per byte.
	n := len(dst)
	dst = append(dst, s...)
	for i := n; i < len(dst); i++ {
		if c := dst[i]; 'A' <= c && c <= 'Z' {
			dst[i] = c + 'a' - 'A'
		}
	}
	return dst
}

func addPair[T ~string | ~[]byte](m *HeaderMap, key, value T) error {
	if m.n+1 > proxywasm.MaxMapPairs || m.size+len(key)+len(value) > proxywasm.MaxMapBytes {
		return proxywasm.ErrMapLimit
	}
	if m.n == len(m.pairs) {
		m.pairs = append(m.pairs, headerPair{})
	}
	p := &m.pairs[m.n]
	p.key = appendLower(p.key[:0], key)
	p.value = append(p.value[:0], value...)
	m.n++
	m.size += len(key) + len(value)
	return nil
}

func setPair[T ~string | ~[]byte](m *HeaderMap, key, value T) error {
	first := -1
	for i := 0; i < m.n; i++ {
		if equalFoldLower(m.pairs[i].key, key) {
			first = i
			break
		}
	}
	if first < 0 {
		return addPair(m, key, value)
	}
	p := &m.pairs[first]
	if m.size-len(p.value)+len(value) > proxywasm.MaxMapBytes {
		return proxywasm.ErrMapLimit
	}
	m.size += len(value) - len(p.value)
	p.value = append(p.value[:0], value...)
	// Remove later duplicates, keeping order.
	j := first + 1
	for i := first + 1; i < m.n; i++ {
		if equalFoldLower(m.pairs[i].key, key) {
			m.size -= len(m.pairs[i].key) + len(m.pairs[i].value)
			continue
		}
		if i != j {
			m.pairs[i], m.pairs[j] = m.pairs[j], m.pairs[i]
		}
		j++
	}
	m.n = j
	return nil
}

func delPairs[T ~string | ~[]byte](m *HeaderMap, key T) {
	m.removeIf(func(k, _ []byte) bool { return equalFoldLower(k, key) })
}

// removeIf removes every pair for which drop is true, keeping the order.
func (m *HeaderMap) removeIf(drop func(key, value []byte) bool) {
	j := 0
	for i := 0; i < m.n; i++ {
		if drop(m.pairs[i].key, m.pairs[i].value) {
			m.size -= len(m.pairs[i].key) + len(m.pairs[i].value)
			continue
		}
		// Swap rather than copy so the removed pair's buffers are reused
		// later; a pair that stays in place is not written (a swap with
		// itself still pays the pointer writes' barriers).
		if i != j {
			m.pairs[i], m.pairs[j] = m.pairs[j], m.pairs[i]
		}
		j++
	}
	m.n = j
}
