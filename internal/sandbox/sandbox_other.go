//go:build !linux

package sandbox

import "os/exec"

// Landlock is Linux's, and so is the uid separation here.
func landlockVersion() int { return 0 }

const uidsSupported = false

// Start refuses: off Linux nothing confines a child.
func Start(cmd *exec.Cmd, p Policy) error { return ErrUnavailable }

// HardenGateway does nothing off Linux.
func HardenGateway() error { return nil }
