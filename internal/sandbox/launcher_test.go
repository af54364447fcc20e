//go:build linux

package sandbox

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// buildC compiles testdata/NAME.c, static, into dir.
func buildC(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	out, err := exec.Command("cc", "-static", "-O2", "-o", bin, filepath.Join("testdata", name+".c")).CombinedOutput()
	if err != nil {
		t.Fatalf("this test needs a C compiler with a static libc (cc -static): %v\n%s", err, out)
	}
	return bin
}

// threads are this process's thread ids.
func threads(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range ents {
		ids = append(ids, e.Name())
	}
	return ids
}

// SEC-20: a server cannot signal any thread of the gateway, not even the
// one that started it, in the first microseconds of its life: a static
// program that asks, from its first instruction and for 50 ms, whether it
// may signal each of the gateway's threads is refused every time.
func TestSEC20_ServerCannotSignalGatewayThreads(t *testing.T) {
	needLandlock(t)
	dir := t.TempDir()
	probe := buildC(t, dir, "tidprobe")
	for i := range 50 {
		cmd := exec.Command(probe, threads(t)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := Start(cmd, Policy{Home: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "done") {
			t.Fatalf("start %d: the probe failed: %v\n%s", i, err, out.String())
		}
		if strings.Contains(out.String(), "hit") {
			t.Fatalf("start %d: the server could signal a thread of the gateway:\n%s", i, out.String())
		}
	}
}

func init() {
	// Any capability held: bounding, ambient, permitted, effective or inheritable.
	moreAttacks["capability"] = func(string) error { return holdsCapability() }
	// The same, as /proc/self/status shows it: ok when a set is not empty.
	moreAttacks["capstatus"] = func(string) error { return capStatus() }
	// A raw packet socket, which sniffs the loopback.
	moreAttacks["packet"] = func(string) error {
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0x300)
		if err == nil {
			syscall.Close(fd)
		}
		return err
	}
}

// holdsCapability returns nil when this process holds some capability,
// in any of its sets, and an error saying it holds none.
func holdsCapability() error {
	var data [2]unix.CapUserData
	if err := unix.Capget(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &data[0]); err != nil {
		return err
	}
	for _, d := range data {
		if d.Effective|d.Permitted|d.Inheritable != 0 {
			return nil
		}
	}
	for c := 0; ; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			break // past the last capability
		}
		amb, _ := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0)
		if in == 1 || amb == 1 {
			return nil
		}
	}
	return errors.New("no capability in any set")
}

// capStatus returns nil when /proc/self/status shows a capability set
// that is not empty, and an error listing them when all are.
func capStatus() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("cannot tell: %w", err)
	}
	var sets []string
	for _, line := range strings.Split(string(b), "\n") {
		if name, v, ok := strings.Cut(line, ":\t"); ok && strings.HasPrefix(name, "Cap") {
			if strings.Trim(v, "0") != "" {
				return nil
			}
			sets = append(sets, line)
		}
	}
	if len(sets) < 5 {
		return fmt.Errorf("cannot tell: %q", sets)
	}
	return fmt.Errorf("all empty: %q", sets)
}

// SEC-20: a server started by a root gateway without a uid of its own
// (stdio_uid_range: off) holds no capability: none effective, permitted,
// inheritable or ambient, and an empty bounding set, so that it cannot
// open a packet socket to sniff the loopback traffic of other users.
func TestSEC20_RootServerHoldsNoCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test starts a server as root: run it as root (CI does)")
	}
	needLandlock(t)
	// /proc for /proc/self/status (CapInh, CapPrm, CapEff, CapBnd, CapAmb).
	got := runChild(t, Policy{Home: t.TempDir(), ReadPaths: []string{"/proc"}}, "capability:", "capstatus:", "packet:")
	for _, k := range []string{"capability:", "capstatus:", "packet:"} {
		if !strings.HasPrefix(got[k], "denied") || strings.Contains(got[k], "cannot tell") {
			t.Errorf("%s %q, want denied (all: %v)", k, got[k], got)
		}
	}
}

// SEC-22: a server starts under the uid and gid it is given, with no
// capability, and Start returns as soon as it runs.
func TestSEC22_StartUnderOwnUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test starts a server as another uid: run it as root (CI does)")
	}
	needLandlock(t)
	home := filepath.Join(openDir(t), "home") // the test's own temporary directory is 0700
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "id -u; id -g; grep ^CapBnd /proc/self/status || echo no-proc")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := Start(cmd, Policy{Home: home, Cred: &Cred{UID: 65534, GID: 65534}}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if got := strings.Fields(out.String()); len(got) < 2 || got[0] != "65534" || got[1] != "65534" {
		t.Errorf("the server's uid and gid: %q, want 65534 65534", out.String())
	}
}
