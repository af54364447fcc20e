//go:build linux

package sandbox

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processesOf lists the live (not zombie) processes whose real uid is uid.
func processesOf(t *testing.T, uid uint32) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // ended meanwhile
		}
		var state, real string
		for sc := bufio.NewScanner(f); sc.Scan(); {
			if v, ok := strings.CutPrefix(sc.Text(), "State:"); ok {
				state = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				real = strings.Fields(v)[0]
			}
		}
		f.Close()
		if real == strconv.Itoa(int(uid)) && !strings.HasPrefix(state, "Z") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// SEC-22: releasing a home kills every process of its uid, one that left
// the server's process group (setsid) included, before the home and with
// it the uid go; a process of another uid lives on.
func TestSEC22_ReleaseHomeEndsTheUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test starts processes as other uids: run it as root (CI does)")
	}
	r := Range{First: 2_097_100, Last: 2_097_109} // far from any system account
	base := filepath.Join(openDir(t), "stdio")
	home := filepath.Join(base, "mcp", "probe")
	if err := os.MkdirAll(filepath.Dir(home), 0o755); err != nil {
		t.Fatal(err)
	}
	cred, err := HomeFor(r, home)
	if err != nil {
		t.Fatal(err)
	}
	if pids := processesOf(t, cred.UID); len(pids) != 0 {
		t.Fatalf("uid %d already runs processes %v: pick another range for this test", cred.UID, pids)
	}
	server := exec.Command("/bin/sh", "-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 & exec sleep 300")
	if err := Start(server, Policy{Home: home, Cred: cred}); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	other := exec.Command("sleep", "300")
	other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: cred.UID + 1, Gid: cred.UID + 1, Groups: []uint32{}}}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); len(processesOf(t, cred.UID)) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("uid %d runs %v, want the server and its setsid child", cred.UID, processesOf(t, cred.UID))
		}
	}

	if err := ReleaseHome(r, home); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(processesOf(t, cred.UID)) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after ReleaseHome, uid %d still runs %v, want none", cred.UID, processesOf(t, cred.UID))
		}
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("the home after ReleaseHome: %v, want it removed", err)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the process of uid %d after releasing uid %d's home: %v, want it alive", cred.UID+1, cred.UID, err)
	}
}

// The killer refuses unless it runs as the uid it ends: as root, pid -1
// would be every process on the machine.
func TestKillAllAsRefusesAnotherUID(t *testing.T) {
	for _, uid := range []uint32{0, uint32(os.Getuid()) + 1} {
		if got := killAllAs(uid); got != 127 {
			t.Errorf("killAllAs(%d) in a process of uid %d: exit %d, want 127 and nothing killed", uid, os.Getuid(), got)
		}
	}
}
