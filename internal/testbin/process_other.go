//go:build !linux

package testbin

import "os/exec"

// killWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; the test's cleanup still stops the process.
func killWithParent(*exec.Cmd) {}
