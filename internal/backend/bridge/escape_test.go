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
// 2 descriptors more for each such server, for as long as its child lived
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
	openFiles := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	sid := f.session(t, "alice")
	before := openFiles()
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
	for openFiles()-before >= servers && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	n := openFiles() - before
	t.Logf("%d descriptors more than before the %d servers", n, servers)
	if n >= servers {
		t.Errorf("%d descriptors more than before %d servers that each left a child holding their pipes; want fewer than %d", n, servers, servers)
	}
}
