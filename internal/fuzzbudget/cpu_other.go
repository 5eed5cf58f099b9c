//go:build !linux

package fuzzbudget

import "time"

// threadCPU has no portable implementation; callers fall back to wall time.
func threadCPU() (time.Duration, bool) { return 0, false }
