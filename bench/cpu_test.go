//go:build unix

package bench

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// ProcessCPU counts every thread of a process: the CPU this test burns on
// two goroutines at once shows up whole, and the kernel's user/system
// split agrees with the clock.
func TestProcessCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := ProcessCPU(os.Getpid()); err == nil {
			t.Fatal("ProcessCPU answered off Linux")
		}
		return
	}
	c0, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Two goroutines spin until the kernel's own account of this process
	// (getrusage) has grown by 2×burn: on a loaded machine that takes
	// longer, and the test still holds.
	const burn = 100 * time.Millisecond
	r0 := rusageCPU(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	for rusageCPU(t)-r0 < 2*burn {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
	<-done
	c1, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Both burners' CPU shows up: more than one thread's worth.
	if d := c1.Sub(c0); d.Total < 2*burn-10*time.Millisecond {
		t.Errorf("ProcessCPU counted %s while getrusage counted at least %s on two goroutines, want at least %s", d.Total, 2*burn, 2*burn-10*time.Millisecond)
	}
	if diff := c1.User + c1.System - c1.Total; diff.Abs() > 50*time.Millisecond {
		t.Errorf("user %s + system %s differ from the CPU-time clock %s by %s, want within 50ms (a few ticks)", c1.User, c1.System, c1.Total, diff)
	}

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if c, err := ProcessCPU(gone.Process.Pid); err == nil {
		t.Errorf("ProcessCPU of an exited process: %+v, want an error", c)
	}
}

// rusageCPU is the user and system time of this process so far, by
// getrusage(2): a count independent of ProcessCPU's clock and /proc.
func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
