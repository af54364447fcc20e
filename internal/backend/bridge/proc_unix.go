//go:build unix

package bridge

import (
	"os/exec"
	"syscall"
)

// setProcAttrs puts the server in its own process group, so that stopping
// it reaches every process it started, and where the kernel can, has it
// killed when the gateway dies without stopping it (setParentDeathSignal).
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// terminateGroup asks the process group led by pid to stop (SIGTERM).
func terminateGroup(pid int) { syscall.Kill(-pid, syscall.SIGTERM) }

// killGroup kills the process group led by pid (SIGKILL).
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
