//go:build !linux

package cdp

import (
	"fmt"
	"os/exec"
	"time"
)

// process is the launched browser. Outside Linux only that process is killed; the
// end-to-end tests run Debian's Chromium on Linux.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func start(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) kill(timeout time.Duration) error {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("cdp: browser process %d did not exit", p.cmd.Process.Pid)
	}
}
