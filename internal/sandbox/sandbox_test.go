package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// childEnv makes the test binary, run as a child, try what its arguments
// say and print one line per attempt: "NAME ok" or "NAME denied: ERR".
const childEnv = "SANDBOX_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		attack(os.Args[1:])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// moreAttacks are the kinds of attack only some systems have, by name.
var moreAttacks = map[string]func(target string) error{}

// attack tries each "kind:target" of args.
func attack(args []string) {
	for _, a := range args {
		kind, target, _ := strings.Cut(a, ":")
		var err error
		switch kind {
		case "read":
			var b []byte
			b, err = os.ReadFile(target)
			if err == nil && len(b) == 0 {
				err = errors.New("empty") // as /proc answers when the check fails at read time
			}
		case "write":
			err = os.WriteFile(target, []byte("x"), 0o600)
		case "connect": // an abstract unix socket: target without its leading @
			var c net.Conn
			if c, err = net.Dial("unix", "@"+target); err == nil {
				c.Close()
			}
		case "signal":
			pid, _ := strconv.Atoi(target)
			err = syscall.Kill(pid, syscall.SIGCONT)
		case "readfd": // a descriptor open before the child started
			fd, _ := strconv.Atoi(target)
			var b [64]byte
			var n int
			if n, err = syscall.Read(fd, b[:]); err == nil && n == 0 {
				err = errors.New("empty")
			}
		default:
			if f := moreAttacks[kind]; f != nil {
				err = f(target)
			} else {
				err = fmt.Errorf("unknown attack %q", kind)
			}
		}
		if err != nil {
			fmt.Printf("%s denied: %v\n", a, err)
		} else {
			fmt.Printf("%s ok\n", a)
		}
	}
}

func needLandlock(t *testing.T) {
	t.Helper()
	if landlockVersion() < 6 {
		// The machines this project runs on have Landlock ABI 7; a kernel
		// without it is a different machine, where Check refuses.
		t.Fatalf("landlock ABI %d, want 6 or later on this machine", landlockVersion())
	}
}

// runChild starts the test binary confined by p with args, and returns
// its attempts by name.
func runChild(t *testing.T, p Policy, args ...string) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{childEnv + "=1"}
	cmd.Dir = p.Home
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := Start(cmd, p); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	res := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if name, rest, ok := strings.Cut(line, " "); ok {
			res[name] = rest
		}
	}
	return res
}

// SEC-20: a confined child reads and writes its home and reads the
// system, but cannot read a file outside them (the gateway's key), read
// the gateway's environment, signal it, or connect to its abstract unix
// socket.
func TestSEC20_ChildConfined(t *testing.T) {
	needLandlock(t)
	t.Run("without /proc", func(t *testing.T) { childConfined(t, nil, true) })
	// With /proc readable (an operator's choice), the signal scope still
	// holds, the descriptors stay closed, and the environ of this (root,
	// dumpable) process stays closed to a root child: it holds no
	// CAP_SYS_PTRACE, and Landlock's ptrace rule refuses the rest.
	t.Run("with /proc", func(t *testing.T) { childConfined(t, []string{"/proc"}, true) })
}

func childConfined(t *testing.T, readPaths []string, environ bool) {
	base := t.TempDir()
	home, other := filepath.Join(base, "home"), filepath.Join(base, "other")
	for _, d := range []string{home, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	key := filepath.Join(base, "secret.key")
	os.WriteFile(key, []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(home, "mine"), []byte("mine"), 0o600)
	os.WriteFile(filepath.Join(other, "theirs"), []byte("theirs"), 0o600)
	self := strconv.Itoa(os.Getpid())
	abstract := fmt.Sprintf("mcpgate-sandbox-test-%d", os.Getpid())
	ln, err := net.Listen("unix", "@"+abstract)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := runChild(t, Policy{Home: home, ReadPaths: readPaths}, "connect:"+abstract,
		"read:"+filepath.Join(home, "mine"), "write:"+filepath.Join(home, "new"), "read:/etc/passwd", "read:/usr/bin/env",
		"read:"+key, "read:"+filepath.Join(other, "theirs"), "write:"+filepath.Join(other, "planted"),
		"read:/proc/"+self+"/environ", "write:/proc/"+self+"/fd/0", "signal:"+self)
	for _, ok := range []string{"read:" + filepath.Join(home, "mine"), "write:" + filepath.Join(home, "new"), "read:/etc/passwd", "read:/usr/bin/env"} {
		if got[ok] != "ok" {
			t.Errorf("%s: %q, want ok", ok, got[ok])
		}
	}
	for _, bad := range []string{"connect:" + abstract, "read:" + key, "read:" + filepath.Join(other, "theirs"), "write:" + filepath.Join(other, "planted"),
		"read:/proc/" + self + "/environ", "write:/proc/" + self + "/fd/0", "signal:" + self} {
		if !environ && bad == "read:/proc/"+self+"/environ" {
			continue
		}
		if !strings.HasPrefix(got[bad], "denied") {
			t.Errorf("%s: %q, want denied (all: %v)", bad, got[bad], got)
		}
	}
	if _, err := os.Stat(filepath.Join(other, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the child planted a file outside its home: %v", err)
	}
}

// SEC-136: a descriptor the gateway holds without close-on-exec (one it
// inherited: a wrapper's `exec 3>>log`) does not reach a confined server,
// which would read it past Landlock, which checks only at open. Fails
// before this change: the child read the key through it.
func TestSEC136_InheritedDescriptorsNotPassedOn(t *testing.T) {
	needLandlock(t)
	home := t.TempDir()
	key := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(key, []byte("TOP-SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(key, syscall.O_RDONLY, 0) // no O_CLOEXEC, as an inherited one
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	got := runChild(t, Policy{Home: home}, "read:"+key, "readfd:"+strconv.Itoa(fd))
	for _, a := range []string{"read:" + key, "readfd:" + strconv.Itoa(fd)} {
		if !strings.HasPrefix(got[a], "denied") {
			t.Errorf("%s: %q, want denied (all: %v)", a, got[a], got)
		}
	}
}

// SEC-20: the restriction is the child's alone: after many starts, every
// thread of this process still opens what the children cannot.
func TestSEC20_GatewayUnconfined(t *testing.T) {
	needLandlock(t)
	base := t.TempDir()
	key := filepath.Join(base, "secret.key")
	os.WriteFile(key, []byte("secret"), 0o600)
	for i := range 8 {
		home := filepath.Join(base, strconv.Itoa(i))
		os.Mkdir(home, 0o700)
		if got := runChild(t, Policy{Home: home}, "read:"+key); !strings.HasPrefix(got["read:"+key], "denied") {
			t.Fatalf("child %d read the key: %q", i, got["read:"+key])
		}
	}
	// Locked goroutines land on many threads, the ones the starts ran
	// on included had the runtime reused them.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if _, err := os.ReadFile(key); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a thread of the gateway cannot read its own key after starting confined children: %v", err)
	}
}

// SEC-23: with nothing to confine servers with, auto refuses and says
// what is missing and what to set; none is the explicit way out. Landlock
// alone counts only from ABI 6, whose scopes keep a server from
// signalling the gateway and other users' servers; below it, servers need
// uids of their own (root with a range).
func TestSEC23_RefuseWithoutIsolation(t *testing.T) {
	type tc struct {
		mode       string
		uids, root bool
		abi        int
		ok         bool
	}
	cases := []tc{
		{Auto, false, false, 0, false},
		{Auto, true, false, 0, false}, // a uid range is no use without root
		{Auto, false, true, 0, false}, // nor root without a range
		{Auto, true, true, 0, true},
		{None, false, false, 0, true},
	}
	for abi := 1; abi <= 11; abi++ {
		cases = append(cases,
			tc{Auto, false, false, abi, abi >= 6}, // not root
			tc{Auto, false, true, abi, abi >= 6},  // root, stdio_uid_range off
			tc{Auto, true, true, abi, true},       // root with a range
			tc{None, false, false, abi, true})
	}
	for _, c := range cases {
		err := decide(c.mode, c.uids, c.abi, c.root)
		if (err == nil) != c.ok {
			t.Errorf("decide(%+v) = %v, want ok %v", c, err, c.ok)
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("decide(%+v) = %v, want it to wrap ErrUnavailable", c, err)
		}
		for _, want := range []string{"stdio_isolation: none", "stdio_uid_range", "6.12"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal does not say %q: %v", want, err)
			}
		}
		if c.abi > 0 && !strings.Contains(err.Error(), fmt.Sprintf("ABI %d", c.abi)) {
			t.Errorf("the refusal does not name the kernel's ABI %d: %v", c.abi, err)
		}
	}
}

// SEC-20: a path servers may read must neither hold a private path nor
// lie inside one: the key, the database, one user's HOME or the data
// directory itself as a read path are all refused; an unrelated path and
// a private path's sibling are not.
func TestSEC20_CheckGrantsBothWays(t *testing.T) {
	data := t.TempDir()
	home := filepath.Join(data, "stdio", "mcp", "0123abcd")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "secret.key"), []byte("k"), 0o600)
	private := []string{filepath.Join(data, "stdio", "mcp"), data, filepath.Join(data, "mcpgate.db")}
	for _, read := range []string{filepath.Join(data, "secret.key"), filepath.Join(data, "mcpgate.db"), home, data, filepath.Dir(data)} {
		if err := CheckGrants("", []string{read}, private); err == nil {
			t.Errorf("read path %s accepted, want a refusal", read)
		}
	}
	if err := CheckGrants("", []string{filepath.Join(filepath.Dir(data), "elsewhere"), data + "-sibling"}, private); err != nil {
		t.Errorf("unrelated read paths refused: %v", err)
	}
	if err := CheckGrants(filepath.Join(home, "server"), nil, private); err == nil {
		t.Error("a command in a user's HOME accepted, want a refusal")
	}
}
