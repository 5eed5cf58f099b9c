package proxywasm

import (
	"encoding/binary"
	"errors"
)

// A header map crosses the ABI boundary in this layout (proxy_get_header_map_pairs,
// proxy_set_header_map_pairs, proxy_send_local_response, proxy_http_call):
//
//	+-------+----------------------------+-------------------------------+
//	| count | count × (keyLen, valueLen) | key0 NUL value0 NUL key1 ...  |
//	| u32le | u32le, u32le               | bytes                         |
//	+-------+----------------------------+-------------------------------+
//
// Lengths exclude the NUL that ends every key and value. The host core
// (Envoy's proxy-wasm-cpp-host) is the reference: it requires both NULs,
// consumes the buffer exactly and caps a map at MaxMapPairs pairs and
// MaxMapBytes bytes.

// The caps of an encoded header map.
const (
	MaxMapPairs = 1024
	MaxMapBytes = 1 << 20
)

// Errors of decoding a header map.
var (
	ErrMapFormat = errors.New("proxy-wasm: malformed header map")
	ErrMapLimit  = errors.New("proxy-wasm: header map exceeds 1024 pairs or 1 MiB")
)

// PairsSize is the encoded size of n pairs whose keys and values have
// kvBytes bytes in all (what proxy_get_header_map_size reports).
func PairsSize(n, kvBytes int) int { return 4 + 10*n + kvBytes }

// AppendPairs appends the encoding of kv (key, value, key, value, ...) to
// dst. It panics on an odd number of strings: that is a programmer error.
func AppendPairs[S ~string | ~[]byte](dst []byte, kv ...S) []byte {
	if len(kv)%2 != 0 {
		panic("proxywasm: AppendPairs needs key, value pairs")
	}
	return AppendPairsFunc(dst, len(kv)/2, func(i int) (S, S) { return kv[2*i], kv[2*i+1] })
}

// AppendPairsFunc appends the encoding of n pairs, the i-th given by
// pair(i), to dst. pair is called twice per pair.
func AppendPairsFunc[S ~string | ~[]byte](dst []byte, n int, pair func(i int) (key, value S)) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	for i := 0; i < n; i++ {
		k, v := pair(i)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(k)))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(v)))
	}
	for i := 0; i < n; i++ {
		k, v := pair(i)
		dst = append(append(dst, k...), 0)
		dst = append(append(dst, v...), 0)
	}
	return dst
}

// PairIter walks an encoded header map without allocating:
//
//	it := proxywasm.NewPairIter(b)
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// An empty buffer is an empty map. A malformed or oversized map stops the
// walk at the first pair that does not fit and Err returns ErrMapFormat or
// ErrMapLimit; a map with bytes after its last pair is malformed.
type PairIter struct {
	b          []byte
	n, i       int
	off        int // offset of the next key
	key, value []byte
	err        error
}

// NewPairIter returns an iterator over the encoded map b.
func NewPairIter(b []byte) PairIter {
	it := PairIter{b: b}
	switch {
	case len(b) == 0:
		return it
	case len(b) > MaxMapBytes:
		it.err = ErrMapLimit
		return it
	case len(b) < 4:
		it.err = ErrMapFormat
		return it
	}
	n := binary.LittleEndian.Uint32(b)
	if n > MaxMapPairs {
		it.err = ErrMapLimit
		return it
	}
	if uint64(len(b)) < 4+8*uint64(n) {
		it.err = ErrMapFormat
		return it
	}
	it.n = int(n)
	it.off = 4 + 8*it.n
	return it
}

// Next advances to the next pair; it returns false at the end or on a
// malformed map.
func (it *PairIter) Next() bool {
	if it.err != nil {
		return false
	}
	if it.i == it.n {
		if it.off != len(it.b) {
			it.err = ErrMapFormat // the host core consumes the buffer exactly
		}
		return false
	}
	kl := uint64(binary.LittleEndian.Uint32(it.b[4+8*it.i:]))
	vl := uint64(binary.LittleEndian.Uint32(it.b[8+8*it.i:]))
	k := uint64(it.off)
	end := k + kl + 1 + vl + 1
	if end > uint64(len(it.b)) || it.b[k+kl] != 0 || it.b[end-1] != 0 {
		it.err = ErrMapFormat
		return false
	}
	it.key = it.b[k : k+kl]
	it.value = it.b[k+kl+1 : k+kl+1+vl]
	it.off = int(end)
	it.i++
	return true
}

// Len returns the number of pairs the map declares.
func (it *PairIter) Len() int { return it.n }

// Key returns the current key; it aliases the map's bytes.
func (it *PairIter) Key() []byte { return it.key }

// Value returns the current value; it aliases the map's bytes.
func (it *PairIter) Value() []byte { return it.value }

// Err returns ErrMapFormat or ErrMapLimit if the map was malformed or too large.
func (it *PairIter) Err() error { return it.err }
