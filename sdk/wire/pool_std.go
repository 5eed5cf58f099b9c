//go:build !wasip1

package wire

import "sync"

// pool keeps scratch values between calls: a sync.Pool natively,
// pool_wasip1.go in the wasm guest.
type pool[T any] struct{ p sync.Pool }

// get returns a kept value, or a new zero one.
func (p *pool[T]) get() *T {
	if x, ok := p.p.Get().(*T); ok {
		return x
	}
	return new(T)
}

// put keeps x for a later get.
func (p *pool[T]) put(x *T) { p.p.Put(x) }
