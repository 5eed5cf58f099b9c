package wasmhost

import (
	"sync"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// SharedData is the key-value store of proxy_get/set_shared_data, shared by
// every VM of a Host and by every Host configured with the same store. It
// follows Envoy's host core: every set gets a new non-zero CAS; cas 0 sets
// unconditionally; on an absent key the cas is ignored; no delete, no TTL.
// It is safe for concurrent use.
type SharedData struct {
	mu  sync.Mutex
	m   map[string]*sharedEntry
	cas uint32
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

// NewSharedData returns an empty store.
func NewSharedData() *SharedData { return &SharedData{m: make(map[string]*sharedEntry)} }

// Get returns a copy of the value of key and its CAS.
func (d *SharedData) Get(key string) ([]byte, uint32, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.m[key]
	if e == nil {
		return nil, 0, false
	}
	return append([]byte(nil), e.value...), e.cas, true
}

func (d *SharedData) nextCAS() uint32 {
	d.cas++
	if d.cas == 0 {
		d.cas++
	}
	return d.cas
}

// proxy_get_shared_data(key_ptr, key_size, return_value_data, return_value_size, return_cas)
func proxyGetSharedData(v *vm, stack []uint64) proxywasm.Status {
	key, ok := v.read(u32(stack[0]), u32(stack[1]))
	if !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	if _, ok := v.read(u32(stack[4]), 4); !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	if v.host.cfg.NoSharedData {
		return proxywasm.StatusUnimplemented
	}
	d := v.host.shared
	d.mu.Lock()
	e := d.m[string(key)]
	if e == nil {
		d.mu.Unlock()
		return proxywasm.StatusNotFound
	}
	// Copy under the lock; the guest allocation below runs without it.
	v.scratch = append(v.scratch[:0], e.value...)
	cas := e.cas
	d.mu.Unlock()
	st := v.copyOut(v.scratch, u32(stack[2]), u32(stack[3]))
	if st == proxywasm.StatusOK {
		v.writeU32(u32(stack[4]), cas)
	}
	return st
}

// proxy_set_shared_data(key_ptr, key_size, value_ptr, value_size, cas)
func proxySetSharedData(v *vm, stack []uint64) proxywasm.Status {
	key, ok1 := v.read(u32(stack[0]), u32(stack[1]))
	val, ok2 := v.read(u32(stack[2]), u32(stack[3]))
	if !ok1 || !ok2 {
		return proxywasm.StatusInvalidMemoryAccess
	}
	if v.host.cfg.NoSharedData {
		return proxywasm.StatusUnimplemented
	}
	cas := u32(stack[4])
	d := v.host.shared
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.m[string(key)]
	if e == nil {
		d.m[string(key)] = &sharedEntry{value: append([]byte(nil), val...), cas: d.nextCAS()}
		return proxywasm.StatusOK
	}
	if cas != 0 && cas != e.cas {
		return proxywasm.StatusCASMismatch
	}
	// Readers copy under the lock, so the value can be rewritten in place.
	e.value = append(e.value[:0], val...)
	e.cas = d.nextCAS()
	return proxywasm.StatusOK
}
