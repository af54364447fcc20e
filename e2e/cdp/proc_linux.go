package cdp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// process is the browser's process group: the launched process leads a new group,
// which Chromium's helpers (zygotes, renderers, the network service) join.
type process struct {
	cmd    *exec.Cmd
	pgid   int
	exited chan struct{} // closed once the launched process has been waited for
	err    error         // its exit status, once exited is closed
}

func start(cmd *exec.Cmd) (*process, error) {
	// Pdeathsig kills the browser should the test binary die without calling Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, pgid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// kill sends SIGKILL to the whole group and waits, at most timeout, until none of
// its processes is left running.
func (p *process) kill(timeout time.Duration) error {
	if err := syscall.Kill(-p.pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cdp: killing process group %d: %w", p.pgid, err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case <-p.exited:
	case <-deadline.C:
		return fmt.Errorf("cdp: browser process %d did not exit", p.pgid)
	}
	for groupRunning(p.pgid) {
		select {
		case <-deadline.C:
			return fmt.Errorf("cdp: processes of group %d still running after SIGKILL", p.pgid)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// groupRunning reports whether a process of group pgid exists that is not a zombie
// (an orphaned helper's zombie, waiting for init to reap it, uses no resource).
func groupRunning(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(data[i+1:])
		if len(fields) < 3 || string(fields[0]) == "Z" || string(fields[0]) == "X" {
			continue
		}
		if g, err := strconv.Atoi(string(fields[2])); err == nil && g == pgid {
			return true
		}
	}
	return false
}
