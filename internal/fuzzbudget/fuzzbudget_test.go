package fuzzbudget

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

// spin keeps the CPU busy for about d.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
		for i := 0; i < 1000; i++ {
			_ = i * i
		}
	}
}

func TestFastInputPassesAndRunsOnce(t *testing.T) {
	t.Setenv("FUZZBUDGET", "")
	r := &recorder{TB: t}
	runs := 0
	CheckBudget(r, 10, time.Second, func() { runs++ })
	if r.failed || runs != 1 {
		t.Fatalf("failed %v (%s), runs %d; want a pass after one run", r.failed, r.msg, runs)
	}
}

func TestSlowInputFailsNamingItsSize(t *testing.T) {
	t.Setenv("FUZZBUDGET", "")
	r := &recorder{TB: t}
	runs := 0
	CheckBudget(r, 1234, 5*time.Millisecond, func() { runs++; spin(40 * time.Millisecond) })
	if !r.failed || runs != 2 {
		t.Fatalf("failed %v, runs %d; want a failure after two runs", r.failed, runs)
	}
	if !strings.Contains(r.msg, "1234 bytes") || !strings.Contains(r.msg, "5ms") {
		t.Fatalf("message %q names neither the size nor the budget", r.msg)
	}
}

func TestOneSlowRunIsNoise(t *testing.T) {
	t.Setenv("FUZZBUDGET", "")
	r := &recorder{TB: t}
	runs := 0
	CheckBudget(r, 1, 20*time.Millisecond, func() {
		runs++
		if runs == 1 {
			spin(60 * time.Millisecond) // the machine was busy, say
		}
	})
	if r.failed || runs != 2 {
		t.Fatalf("failed %v (%s), runs %d; want a pass after a re-run", r.failed, r.msg, runs)
	}
}

func TestEnvironmentOverridesTheBudget(t *testing.T) {
	t.Setenv("FUZZBUDGET", "1h")
	r := &recorder{TB: t}
	CheckBudget(r, 1, time.Nanosecond, func() { spin(2 * time.Millisecond) })
	if r.failed {
		t.Fatalf("FUZZBUDGET=1h did not apply: %s", r.msg)
	}
	t.Setenv("FUZZBUDGET", "")
	if got := effective(0); got != Default {
		t.Fatalf("budget 0 = %v, want the default %v", got, Default)
	}
}

// TestWaitingIsNotCharged checks that time off the CPU does not count where a
// thread CPU clock exists: a loaded machine must not produce findings.
func TestWaitingIsNotCharged(t *testing.T) {
	if _, ok := threadCPU(); !ok {
		t.Skip("no thread CPU clock on " + runtime.GOOS + "; wall time is used")
	}
	if d := Measure(func() { time.Sleep(60 * time.Millisecond) }); d > 20*time.Millisecond {
		t.Fatalf("sleeping 60ms cost %v of CPU", d)
	}
	if d := Measure(func() { spin(30 * time.Millisecond) }); d < 5*time.Millisecond {
		t.Fatalf("spinning 30ms cost only %v of CPU", d)
	}
}
