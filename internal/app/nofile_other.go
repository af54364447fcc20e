//go:build !unix

package app

// openFileLimit returns the process's open-file limit, if it has one.
func openFileLimit() (uint64, bool) { return 0, false }
