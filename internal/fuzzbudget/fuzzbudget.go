// Package fuzzbudget holds fuzz targets to a time budget per input: an input
// within the target's size caps that takes longer than the budget to process
// is a finding, like a crash.
//
// Timing on a shared machine is noisy (other processes, the garbage
// collector, the fuzzer's own workers), so a slow first run is not enough to
// fail: Check measures the CPU time of the thread that runs the function
// where the platform offers it (wall time elsewhere), and when the budget is
// exceeded it collects garbage and runs the function once more. Only an input
// that is over budget in both runs fails the test.
//
// Use it in the body of a fuzz target:
//
//	f.Fuzz(func(t *testing.T, b []byte) {
//		fuzzbudget.Check(t, len(b), func() { _, _ = wire.DecodeValue(b) })
//	})
//
// The function must be repeatable: it may run twice. The environment variable
// FUZZBUDGET (a Go duration, "200ms") replaces every budget, for slow
// machines or builds with the race detector.
package fuzzbudget

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// Default is the budget of one input.
const Default = 50 * time.Millisecond

// Check runs fn, an input of size bytes, within the Default budget.
func Check(tb testing.TB, size int, fn func()) {
	tb.Helper()
	CheckBudget(tb, size, Default, fn)
}

// CheckBudget runs fn, an input of size bytes, and fails tb when it takes
// longer than budget (Default when budget ≤ 0) twice in a row.
func CheckBudget(tb testing.TB, size int, budget time.Duration, fn func()) {
	tb.Helper()
	budget = effective(budget)
	first := measure(fn)
	if first.cost() <= budget {
		return
	}
	// Over budget: make sure it was the input and not the machine. Collect
	// the garbage the first run left, so the second run does not pay for it,
	// and take the cheaper of the two.
	runtime.GC()
	second := measure(fn)
	best := first
	if second.cost() < first.cost() {
		best = second
	}
	if best.cost() <= budget {
		return
	}
	tb.Fatalf("fuzzbudget: an input of %d bytes took %v (%s), over the budget of %v in two runs",
		size, best.cost().Round(time.Microsecond), best.describe(), budget)
}

// effective applies the FUZZBUDGET override and the default.
func effective(budget time.Duration) time.Duration {
	if s := os.Getenv("FUZZBUDGET"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d
		}
	}
	if budget <= 0 {
		return Default
	}
	return budget
}

// sample is one timed run.
type sample struct {
	wall   time.Duration
	cpu    time.Duration
	hasCPU bool
}

// cost is the figure held against the budget: the thread's CPU time when
// known (time spent waiting for a core does not count), wall time otherwise.
func (s sample) cost() time.Duration {
	if s.hasCPU {
		return s.cpu
	}
	return s.wall
}

func (s sample) describe() string {
	if s.hasCPU {
		return "thread CPU time; wall " + s.wall.Round(time.Microsecond).String()
	}
	return "wall time"
}

// measure runs fn on a locked OS thread, so the thread's CPU clock measures
// fn (and the garbage-collection assists fn is charged with) and nothing else.
func measure(fn func()) sample {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, ok0 := threadCPU()
	start := time.Now()
	fn()
	wall := time.Since(start)
	cpu1, ok1 := threadCPU()
	s := sample{wall: wall}
	if ok0 && ok1 && cpu1 >= cpu0 {
		s.cpu, s.hasCPU = cpu1-cpu0, true
	}
	return s
}

// Measure returns the cost Check would hold against the budget for one run
// of fn: thread CPU time where available, wall time elsewhere.
func Measure(fn func()) time.Duration { return measure(fn).cost() }
