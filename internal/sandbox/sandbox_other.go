//go:build !linux

package sandbox

import (
	"os"
	"os/exec"
)

// Landlock is Linux's, and so is the uid separation here.
func landlockVersion() int { return 0 }

const uidsSupported = false

// Start refuses: off Linux nothing confines a child.
func Start(cmd *exec.Cmd, p Policy) error { return ErrUnavailable }

// HardenGateway does nothing off Linux.
func HardenGateway() error { return nil }

// HomeFor refuses: separate uids are Linux's here.
func HomeFor(r Range, home string) (*Cred, error) { return nil, ErrUnavailable }

// ReleaseHome removes home: off Linux no uid was given to it.
func ReleaseHome(r Range, home string) error { return os.RemoveAll(home) }

// Ended does nothing off Linux, where Start starts nothing.
func Ended(c *Cred) error { return nil }

// Searchable does nothing off Linux.
func Searchable(top, dir string, changed func(string)) error { return nil }
