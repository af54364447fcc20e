//go:build !linux

package main

import "syscall"

// childAttr: -gateway needs Linux (bench.ProcessCPU), so nothing here.
func childAttr() *syscall.SysProcAttr { return nil }
