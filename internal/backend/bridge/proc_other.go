//go:build !unix

package bridge

import (
	"os"
	"os/exec"
)

// Without process groups only the server itself is stopped; mcpgate
// targets Linux, where proc_unix.go reaches its children too.
func setProcAttrs(cmd *exec.Cmd) {}

func terminateGroup(pid int) { killGroup(pid) }

func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
