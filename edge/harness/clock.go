package harness

import (
	"sync"
	"time"
)

// Clock is a settable clock. The guest's WASI walltime and nanotime and
// proxy_get_current_time_nanoseconds read it, so tests reach idle and hard
// expiry without sleeping. It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	mono int64
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{now: t, mono: 1} }

// Now returns the current wall-clock time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Nanotime returns the monotonic reading; it moves only with Advance.
func (c *Clock) Nanotime() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Set moves the wall clock to t (backwards too); the monotonic clock moves
// forward by the difference when t is later.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := t.Sub(c.now); d > 0 {
		c.mono += int64(d)
	}
	c.now = t
}

// Advance moves both clocks forward by d.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.mono += int64(d)
}
