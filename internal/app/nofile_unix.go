//go:build unix

package app

import "syscall"

// openFileLimit returns the process's open-file limit, if it is known
// (unlimited is a huge number, which the caller caps).
func openFileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return r.Cur, true
}
