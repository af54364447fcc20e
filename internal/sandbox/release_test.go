//go:build linux

package sandbox

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// needRoot fails t unless it runs as root, which starting processes and
// giving directories to other uids takes (CI runs as root).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test starts processes as other uids: run it as root (CI does)")
	}
}

// newBase is a new stdio base directory (DATA-DIR/stdio) with a resource's
// directory mcp in it, under a directory every uid may traverse.
func newBase(t *testing.T) string {
	t.Helper()
	base := filepath.Join(openDir(t), "stdio")
	if err := os.MkdirAll(filepath.Join(base, "mcp"), 0o755); err != nil {
		t.Fatal(err)
	}
	return base
}

// userHome gives the user name a home under base and a uid of r, far from
// any system account, that runs nothing yet; what the test leaves running
// as it is killed at the end.
func userHome(t *testing.T, base string, r Range, name string) (string, *Cred) {
	t.Helper()
	home := filepath.Join(base, "mcp", name)
	cred, err := HomeFor(r, home)
	if err != nil {
		t.Fatal(err)
	}
	if pids := processesOf(t, cred.UID); len(pids) != 0 {
		t.Fatalf("uid %d already runs processes %v: pick another range for this test", cred.UID, pids)
	}
	t.Cleanup(func() { killUID(t, cred.UID) })
	return home, cred
}

// holdLock opens the lock file name as another gateway process would, and
// locks it with how until the test ends or the caller closes it.
func holdLock(t *testing.T, name string, how int) *os.File {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		t.Fatal(err)
	}
	return f
}

// startLeaver starts, as cred in home, a server that leaves a setsid child
// running outside its process group.
func startLeaver(t *testing.T, home string, cred *Cred) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 & exec sleep 300")
	if err := Start(cmd, Policy{Home: home, Cred: cred}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// waitProcesses waits until done holds for the number of processes uid
// runs, and fails t with what after 10 s.
func waitProcesses(t *testing.T, uid uint32, what string, done func(n int) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !done(len(processesOf(t, uid))); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: uid %d runs %v", what, uid, processesOf(t, uid))
		}
	}
}

// killUID kills what a failed test left running as uid.
func killUID(t *testing.T, uid uint32) {
	for _, pid := range processesOf(t, uid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// SEC-22: releasing a home kills every process of its uid, one that left
// the server's process group (setsid) included, before the home and with
// it the uid go; a process of another uid lives on.
func TestSEC22_ReleaseHomeEndsTheUID(t *testing.T) {
	needRoot(t)
	r := Range{First: 2_097_100, Last: 2_097_109}
	home, cred := userHome(t, newBase(t), r, "probe")
	startLeaver(t, home, cred)
	other := exec.Command("sleep", "300")
	other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: cred.UID + 1, Gid: cred.UID + 1, Groups: []uint32{}}}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	waitProcesses(t, cred.UID, "want the server and its setsid child", func(n int) bool { return n == 2 })

	if err := ReleaseHome(r, home); err != nil {
		t.Fatal(err)
	}
	waitProcesses(t, cred.UID, "after ReleaseHome, want none", func(n int) bool { return n == 0 })
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("the home after ReleaseHome: %v, want it removed", err)
	}
	if pids := processesOf(t, cred.UID+1); len(pids) != 1 || pids[0] != other.Process.Pid { // a zombie, killed, is not listed
		t.Errorf("uid %d after releasing uid %d's home runs %v, want its process %d alive", cred.UID+1, cred.UID, pids, other.Process.Pid)
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

// SEC-22: the end of a user's last server kills what its servers left
// running under the uid (children that left the process group), and the
// end of one server while another of the same uid runs kills nothing.
func TestSEC22_EndedKillsWhatTheLastServerLeft(t *testing.T) {
	needRoot(t)
	home, cred := userHome(t, newBase(t), Range{First: 2_097_200, Last: 2_097_209}, "user")
	end := func(cmd *exec.Cmd) {
		cmd.Process.Kill()
		cmd.Wait()
		if err := Ended(cred); err != nil {
			t.Fatal(err)
		}
	}
	first, second := startLeaver(t, home, cred), startLeaver(t, home, cred)
	waitProcesses(t, cred.UID, "want two servers, each with a setsid child", func(n int) bool { return n == 4 })
	end(first)
	time.Sleep(100 * time.Millisecond) // what a wrongful kill would need to show
	if n := len(processesOf(t, cred.UID)); n != 3 {
		t.Fatalf("after the first server's end, uid %d runs %d processes %v, want 3: the second server and both children", cred.UID, n, processesOf(t, cred.UID))
	}
	end(second)
	waitProcesses(t, cred.UID, "after the last server's end, want none", func(n int) bool { return n == 0 })
}

// SEC-22: replicas on one host share the data directory and so a user's
// uid: the end of the user's last server in one process kills nothing
// while another process holds the uid's lock (it runs a server of the
// user's).
func TestSEC22_EndedSparesAnotherProcessesServers(t *testing.T) {
	needRoot(t)
	home, cred := userHome(t, newBase(t), Range{First: 2_097_300, Last: 2_097_309}, "user")
	// Another replica's server of the user's: its own open of the lock,
	// held shared, as its servers.started takes it.
	holdLock(t, uidLock(home, cred.UID), unix.LOCK_SH)
	cmd := startLeaver(t, home, cred)
	waitProcesses(t, cred.UID, "want the server and its setsid child", func(n int) bool { return n == 2 })
	cmd.Process.Kill()
	cmd.Wait()
	if err := Ended(cred); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // what a wrongful kill would need to show
	if n := len(processesOf(t, cred.UID)); n != 1 {
		t.Errorf("after this process's last server ended while another holds the uid's lock, uid %d runs %v, want its setsid child (1): another replica's server would have been killed", cred.UID, processesOf(t, cred.UID))
	}
}

// lockWaiter reports whether /proc/locks shows a request blocked on the
// file name (an inode), so a test knows a Start waits for a lock.
func lockWaiter(t *testing.T, name string) bool {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		return false
	}
	ino := ":" + strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10)
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(locks), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 6 && fields[1] == "->" && strings.HasSuffix(fields[6], ino) {
			return true
		}
	}
	return false
}

// SEC-22: while another gateway process on the data directory ends what
// one user's last server left (it holds the uid's lock exclusively), a
// start of that user's server waits, and a start of another user's does
// not: the wait is the uid's, never the whole gateway's.
func TestSEC22_ALockedUIDDelaysNoOtherUser(t *testing.T) {
	needRoot(t)
	r := Range{First: 2_097_400, Last: 2_097_409}
	base := newBase(t)
	alice, credA := userHome(t, base, r, "alice")
	bob, credB := userHome(t, base, r, "bob")
	// Another replica, killing what alice's last server there left.
	lock := uidLock(alice, credA.UID)
	other := holdLock(t, lock, unix.LOCK_EX)
	// start starts a server of cred's in the background; its channel
	// closes once Start returned, with *err its error.
	start := func(home string, cred *Cred) (<-chan struct{}, *error) {
		done, err := make(chan struct{}), new(error)
		cmd := exec.Command("/bin/sleep", "300")
		go func() {
			defer close(done)
			*err = Start(cmd, Policy{Home: home, Cred: cred})
		}()
		t.Cleanup(func() {
			other.Close()
			if <-done; *err == nil {
				cmd.Process.Kill()
				cmd.Wait()
				Ended(cred)
			}
		})
		return done, err
	}
	startedA, errA := start(alice, credA)
	for deadline := time.Now().Add(10 * time.Second); !lockWaiter(t, lock); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alice's start does not wait for her uid's lock, held by another process")
		}
	}
	startedB, errB := start(bob, credB)
	select {
	case <-startedB:
		if *errB != nil {
			t.Fatal(*errB)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("bob's server did not start within 15 s while another process held alice's uid's lock: one uid's wait held up every user's start")
	}
	select {
	case <-startedA:
		t.Fatalf("alice's start returned (%v) while another process held her uid's lock exclusively", *errA)
	default:
	}
	other.Close()
	if <-startedA; *errA != nil {
		t.Fatal(*errA)
	}
}

func init() {
	// "release:FIRST-LAST=HOME" releases HOME as a gateway of the child's
	// uid would, with stdio_uid_range FIRST-LAST.
	moreAttacks["release"] = func(target string) error {
		rs, home, _ := strings.Cut(target, "=")
		r, err := ParseRange(rs)
		if err != nil {
			return err
		}
		return ReleaseHome(r, home)
	}
}

// SEC-22: a gateway that is not root runs its servers as its own uid,
// whatever stdio_uid_range says; when that uid lies in the range, the
// release of a probe's home (which that uid owns) ends no process of it
// (the gateway's own, and those of whoever else runs as it) and removes
// the home.
func TestSEC22_ReleaseHomeSparesTheGatewaysOwnUID(t *testing.T) {
	needRoot(t)
	const uid = 2_097_505 // far from any system account
	if pids := processesOf(t, uid); len(pids) != 0 {
		t.Fatalf("uid %d already runs processes %v: pick another uid for this test", uid, pids)
	}
	t.Cleanup(func() { killUID(t, uid) })
	base := filepath.Join(openDir(t), "stdio")
	home := filepath.Join(base, "mcp", "probe")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{base, filepath.Dir(home), home} {
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	other := exec.Command("/bin/sleep", "300") // another process of the gateway's uid
	other.SysProcAttr = cred
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	gateway := exec.Command("/proc/self/exe", fmt.Sprintf("release:%d-%d=%s", uid-5, uid+5, home))
	gateway.Env, gateway.Dir, gateway.SysProcAttr = []string{childEnv + "=1"}, "/", cred
	out, err := gateway.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), " ok") {
		t.Fatalf("ReleaseHome in a gateway of uid %d with the uid in its range: %v, %s; want it done and no process of its uid killed", uid, err, out)
	}
	if pids := processesOf(t, uid); len(pids) != 1 || pids[0] != other.Process.Pid { // a zombie, killed, is not listed
		t.Errorf("the gateway's uid %d after ReleaseHome runs %v, want its other process %d alive", uid, pids, other.Process.Pid)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("the home after ReleaseHome: %v, want it removed", err)
	}
}

// SEC-20: the killer runs as a server's uid, whose processes may read its
// /proc/PID/environ, so it takes nothing of the gateway's environment
// (where a variable the configuration never read, PGPASSWORD for pgx,
// stays). A malformed GOMEMLIMIT, which the Go runtime of any process that
// inherits it refuses at start, shows whether it got any.
func TestSEC20_KillerTakesNoneOfTheGatewaysEnvironment(t *testing.T) {
	needRoot(t)
	const uid = 2_097_515 // far from any system account
	if pids := processesOf(t, uid); len(pids) != 0 {
		t.Fatalf("uid %d already runs processes %v: pick another uid for this test", uid, pids)
	}
	t.Setenv("GOMEMLIMIT", "the-gateway's-own")
	if err := killAll(uid); err != nil {
		t.Fatalf("killAll with the gateway's environment holding a variable a Go process refuses: %v; want the killer started without it", err)
	}
}

// pipeHeldUID is the uid whose killer, in this test binary, leaves a
// process of the uid holding its output and exits without killing: what a
// server's process that stopped the killer before its kill and opened
// /proc/PID/fd/1 (a kernel without Landlock keeps /proc open) would do.
const pipeHeldUID = 2_097_525

// The killer's role starts in the init of this package, after every
// package-level variable: this one runs first, in the killer of
// pipeHeldUID only.
var _ = holdKillersPipe()

func holdKillersPipe() bool {
	var l launch
	if len(os.Args) < 2 || os.Args[0] != launcherName || json.Unmarshal([]byte(os.Args[1]), &l) != nil || l.KillUID != pipeHeldUID {
		return false
	}
	holder := exec.Command("/bin/sleep", "300")
	holder.Stdout, holder.Stderr = os.Stdout, os.Stderr
	if err := holder.Start(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// SEC-22: the end of what a uid's servers left waits for the killer, not
// for every process that holds its output: a server's process could hold
// it for ever, and with it the uid's lock and every later start of the
// user's servers, here and in every replica.
func TestSEC22_KillAllWaitsNotForItsOutputsHolders(t *testing.T) {
	needRoot(t)
	if pids := processesOf(t, pipeHeldUID); len(pids) != 0 {
		t.Fatalf("uid %d already runs processes %v: pick another uid for this test", pipeHeldUID, pids)
	}
	t.Cleanup(func() { killUID(t, pipeHeldUID) })
	done := make(chan error, 1)
	go func() { done <- killAll(pipeHeldUID) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		killUID(t, pipeHeldUID) // lets killAll return
		t.Fatal("killAll still waited 30 s after the killer exited, for a process of the uid that holds its output")
	}
}

// SEC-22: releasing a home kills nothing of its uid while another gateway
// process on the data directory holds the uid's lock (it runs a server of
// that uid: the uid is another user's too, which two processes allocating
// at once can make), and the home goes all the same.
func TestSEC22_ReleaseHomeSparesAnotherProcessesServers(t *testing.T) {
	needRoot(t)
	r := Range{First: 2_097_600, Last: 2_097_609}
	home, cred := userHome(t, newBase(t), r, "probe")
	// Another replica's server of that uid, and its hold on the lock.
	holdLock(t, uidLock(home, cred.UID), unix.LOCK_SH)
	server := exec.Command("/bin/sleep", "300")
	server.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: []uint32{}}}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()

	if err := ReleaseHome(r, home); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)                                                     // what a wrongful kill would need to show
	if pids := processesOf(t, cred.UID); len(pids) != 1 || pids[0] != server.Process.Pid { // a zombie, killed, is not listed
		t.Errorf("uid %d after ReleaseHome runs %v, want another process's server %d alive", cred.UID, pids, server.Process.Pid)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("the home after ReleaseHome: %v, want it removed", err)
	}
}

// SEC-22: a uid is allocated under a lock that every gateway process on
// the data directory takes, so that two replicas on one host allocating
// at once cannot both read a uid as free and give it to two users.
func TestSEC22_HomeForWaitsForAnotherProcessesAllocation(t *testing.T) {
	needRoot(t)
	r := Range{First: 2_097_700, Last: 2_097_709}
	base := newBase(t)
	// Another replica allocating: its own open of the lock, held.
	other := holdLock(t, filepath.Join(base, ".uids.lock"), unix.LOCK_EX)
	done := make(chan error, 1)
	go func() {
		_, err := HomeFor(r, filepath.Join(base, "mcp", "alice"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("HomeFor returned (%v) while another process held the allocation lock, want it to wait", err)
	case <-time.After(300 * time.Millisecond):
	}
	other.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("HomeFor still waits 10 s after the other process let the lock go")
	}
	if _, err := os.Stat(filepath.Join(base, ".uids.lock")); !os.IsNotExist(err) {
		t.Errorf("the allocation lock after HomeFor: %v, want it removed (a check leaves nothing)", err)
	}
}
