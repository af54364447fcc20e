package bench

import (
	"os"
	"os/exec"
	"runtime"
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
	const burn = 100 * time.Millisecond
	done := make(chan int)
	for range 2 {
		go func() {
			n := 0
			for start := time.Now(); time.Since(start) < burn; n++ {
			}
			done <- n
		}()
	}
	<-done
	<-done
	c1, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// At least one burner's worth even if the two shared one CPU.
	if d := c1.Sub(c0); d.Total < burn {
		t.Errorf("ProcessCPU counted %s while the test burnt %s on each of two goroutines, want at least %s", d.Total, burn, burn)
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
