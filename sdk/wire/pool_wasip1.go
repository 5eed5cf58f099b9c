//go:build wasip1

package wire

// pool keeps scratch values between calls. In the wasm guest one goroutine
// runs the package, so a pool is one kept value (a nested get finds the slot
// empty and makes a new one); sync.Pool cost the module about 38 KB
// (pool_std.go is the native build). get reads and clears the slot with no
// call in between, so even the goroutines of a wasip1 test binary, which
// share one thread, never get the same value.
type pool[T any] struct{ kept *T }

// get returns the kept value, or a new zero one.
func (p *pool[T]) get() *T {
	if x := p.kept; x != nil {
		p.kept = nil
		return x
	}
	return new(T)
}

// put keeps x for a later get.
func (p *pool[T]) put(x *T) { p.kept = x }
