package testbin

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the process when the test binary
// dies, so a test killed by its timeout leaves no servers behind.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
