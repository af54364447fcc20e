package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcpgate/mcpgate/store/sqlite"
)

// A ^C at `users add`'s password prompt, on a real terminal, ends the
// command (exit 130) and gives the terminal its echo back. Before, the
// signal only cancelled the command's context while the read went on: the
// person had to type the password twice more to learn it was cancelled.
func TestPasswordPromptEndsOnInterrupt(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "mcpgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	ptm, pts := openPTY(t)

	cmd := exec.Command(binPath, "users", "add", "carol", "--data-dir", dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	// Its own session, the terminal its controlling one: ^C there is a
	// SIGINT to the command, as in a shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var mu sync.Mutex
	var screen strings.Builder
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := ptm.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	shown := func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(shown(), "New password: "); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no password prompt within 30 s; the terminal shows %q", shown())
		}
	}
	if _, err := ptm.Write([]byte("sec\x03")); err != nil { // part of a password, then ^C
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 130 {
			t.Errorf("users add after ^C: %v, want exit status 130", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("users add still waits 10 s after ^C at its prompt; the terminal shows %q", shown())
	}
	tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Error("the terminal's echo is still off after ^C at the prompt")
	}
}

// openPTY opens a pseudo-terminal pair: the side a terminal emulator
// holds, and the terminal a command runs on.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal to run the prompt on: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}
