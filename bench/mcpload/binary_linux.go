package main

import "syscall"

// childAttr puts the gateway process in a process group of its own, so
// that an interrupt at the terminal reaches mcpload alone, which reports
// the rounds done and then stops the gateway; and it makes the kernel kill
// the gateway if mcpload dies without stopping it (a SIGKILL, a test
// binary's timeout), so that no gateway is left listening.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
