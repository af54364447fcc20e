package bridge

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SEC-205: a server that leaves a process in a session of its own
// (setsid), holding the server's stdin, stdout and stderr, and exits
// leaves none of the gateway's ends of those pipes open, nor their
// goroutines, once the grace for its last lines has passed. Fails before:
// 7 pipes more after 5 such servers (-3 after), for as long as a child lived
// (a server restarted in a loop took the descriptors SEC-41 keeps for
// the store).
func TestSEC205_EscapedChildHoldsNoGatewayDescriptors(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	t.Cleanup(func() {
		b, _ := os.ReadFile(filepath.Join(userDir(f.dir, users["alice"].User.ID), "pids"))
		for s := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	openPipes := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if to, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(to, "pipe:") {
				n++
			}
		}
		return n
	}
	sid := f.session(t, "alice")
	before := openPipes() // the first server's among them
	const servers = 5
	for i := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		resp, body := f.rpc(t, ctx, "alice", sid, callBody(i+10, "escape", nil), nil)
		cancel()
		if resp.StatusCode != 200 || !strings.Contains(body, "exited") {
			t.Fatalf("server %d: %d %s; want 200 and a JSON-RPC error that it exited", i, resp.StatusCode, body)
		}
		waitFor(t, "the server's link ended", 10*time.Second, func() bool { return f.pool.current(users["alice"]) == nil })
	}
	// The grace for the last lines is 1 s after each exit.
	deadline := time.Now().Add(10 * time.Second)
	for openPipes() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	n := openPipes() - before
	t.Logf("%d pipes more than before the %d servers", n, servers)
	if n > 0 {
		t.Errorf("%d pipes more than before %d servers that each left a child holding theirs; want none", n, servers)
	}
}
