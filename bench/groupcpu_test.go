package bench

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
)

func TestProcessStatus(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	rss, err := ProcessRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("RSS %d, %v", rss, err)
	}
	hwm, err := ProcessStatus(os.Getpid(), "VmHWM")
	if err != nil || hwm < rss {
		t.Fatalf("peak %d below RSS %d (%v)", hwm, rss, err)
	}
	if _, err := ProcessStatus(os.Getpid(), "NoSuchField"); err == nil {
		t.Fatal("a missing field read as a size")
	}
}

// A child's CPU counts with its parent's, and a process that is not there
// is an error, not zero.
func TestChildrenCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	self, err := ChildrenCPU(os.Getpid())
	if err != nil || self <= 0 {
		t.Fatalf("%v, %v", self, err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	child, err := ProcessCPU(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	both, err := ChildrenCPU(os.Getpid())
	if err != nil || both < self+child.Total {
		t.Fatalf("with the child %v, want at least %v + %v (%v)", both, self, child.Total, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := ChildrenCPU(cmd.Process.Pid); err == nil {
		t.Fatal("an exited process has a CPU time")
	}
}
