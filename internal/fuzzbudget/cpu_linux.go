//go:build linux

package fuzzbudget

import (
	"syscall"
	"time"
)

// rusageThread is RUSAGE_THREAD (Linux 2.6.26 and later): the calling
// thread's usage.
const rusageThread = 1

// threadCPU returns the CPU time (user and system) the calling OS thread has
// used so far.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
