package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// `mcpgate serve --stdio CMD`, as a user runs it, with the reference
// everything server (TypeScript) as the command: the go-sdk client goes
// through the OAuth flow and calls echo; the server process, confined by
// the sandbox, which the node runtime works within, runs as alice
// (its start is logged with her id and its pid), its working directory is
// under the data directory, and SIGTERM stops it with the gateway.
func TestBinaryStdio(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node, entry := node22(t), everythingStdio(t)
	// Under a directory the servers' uids may traverse: mcpgate opens its
	// data directory to them, never the directories above it (SEC-22).
	data := filepath.Join(sharedDir(t), "data")
	port := freePort(t)
	p := startBinary(t, port, "--data-dir", data, "--local-user", user+":"+password,
		"--stdio", shellQuote(node)+" "+shellQuote(entry)+" stdio", "--stdio-read-path", packageRoot(entry))

	sess := connectWithOAuth(t, ctx, p)
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "through the binary"}})
	if err != nil || res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "through the binary") {
		t.Fatalf("echo: %v %+v, want the text echoed\n%s", err, res, p.Stderr())
	}
	sess.Close()

	started := logRecords(t, p.settledStderr(t), "stdio server started")
	if len(started) != 1 || started[0]["user"] != "local:alice" || started[0]["isolation"] != "auto" {
		t.Fatalf("want one stdio server started for local:alice, confined (SEC-20), got %v\n%s", started, p.Stderr())
	}
	pid, _ := started[0]["pid"].(float64)
	if pid <= 0 {
		t.Fatalf("no pid in %v, want the server's pid logged", started[0])
	}
	if err := syscall.Kill(int(pid), 0); err != nil {
		t.Fatalf("the stdio server (pid %v) is not running: %v", pid, err)
	}
	homes, _ := filepath.Glob(filepath.Join(data, "stdio", "mcp", "*"))
	if len(homes) != 1 {
		t.Fatalf("want one user directory under %s, got %v", filepath.Join(data, "stdio", "mcp"), homes)
	}
	p.stop(t)
	// The process group was killed before the gateway exited; give the
	// kernel a moment to reap.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(int(pid), 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the stdio server (pid %v) outlived the gateway", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logRecords returns the JSON log records with message msg.
func logRecords(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// shellQuote quotes s as one word for --stdio.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// SEC-22: under a uid of the user's own, what a stdio server leaves
// running outside its process group (a setsid child) ends with the
// user's last server, here at the gateway's stop; it never runs on under
// the uid, unsupervised and beyond stdio_max_processes.
func TestBinaryStdioEscapedChildEnds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs the stdio servers' uids: run it as root (CI does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seconds := fmt.Sprint(4000 + os.Getpid()%1000) // marks this test's process
	t.Cleanup(func() {
		for pid := range sleepers(t, seconds) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// Every request gets initialize's result: the client asks no more.
	script := `setsid sleep ` + seconds + ` </dev/null >/dev/null 2>&1 & ` +
		`while read line; do case "$line" in *'"id":'*) id=$(printf %s "$line" | sed 's/.*"id":\([0-9]*\).*/\1/'); ` +
		`printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"daemon","version":"1"}}}\n' "$id";; esac; done`
	data := filepath.Join(sharedDir(t), "data")
	p := startBinary(t, freePort(t), "--data-dir", data, "--local-user", user+":"+password, "--stdio", "/bin/sh -c "+shellQuote(script))
	sess := connectWithOAuth(t, ctx, p)
	sess.Close()
	for deadline := time.Now().Add(10 * time.Second); len(sleepers(t, seconds)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server's setsid child never ran\n%s", p.Stderr())
		}
	}
	p.stop(t)
	for deadline := time.Now().Add(10 * time.Second); len(sleepers(t, seconds)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after the gateway's stop, the server's setsid child lives on: pid and uid %v\n%s", sleepers(t, seconds), p.Stderr())
		}
	}
}

// SEC-145: a stdio server does not outlive a gateway killed outright (SIGKILL, the
// OOM killer), which has no chance to stop it: the kernel sends it SIGKILL
// when the gateway dies (PR_SET_PDEATHSIG), through the launcher's exec
// and the change to the person's uid. A server that ignores the end of
// its stdin would otherwise run on, unsupervised, and the next start
// would add another.
func TestSEC145_StdioServerEndsWithKilledGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	marker := fmt.Sprintf("mcpgate-orphan-%d", os.Getpid())
	servers := func() []string {
		var pids []string
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			status, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
			if err == nil && strings.Contains(string(cmdline), marker) && !strings.Contains(string(status), "State:\tZ") {
				pids = append(pids, e.Name())
			}
		}
		return pids
	}
	t.Cleanup(func() {
		for _, pid := range servers() {
			var n int
			fmt.Sscan(pid, &n)
			syscall.Kill(n, syscall.SIGKILL)
		}
	})
	// Answers every request with initialize's result, and ignores the end
	// of its stdin (trap, then a loop that never ends on EOF).
	script := `: ` + marker + `; trap '' TERM HUP PIPE; while :; do if read line; then case "$line" in *'"id":'*) id=$(printf %s "$line" | sed 's/.*"id":\([0-9]*\).*/\1/'); ` +
		`printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"stubborn","version":"1"}}}\n' "$id";; esac; else sleep 0.2; fi; done`
	data := filepath.Join(sharedDir(t), "data")
	p := startBinary(t, freePort(t), "--data-dir", data, "--local-user", user+":"+password, "--stdio", "/bin/sh -c "+shellQuote(script))
	sess := connectWithOAuth(t, ctx, p)
	defer sess.Close()
	if len(servers()) == 0 {
		t.Fatalf("no process of the stdio server (%s) runs after initialize\n%s", marker, p.Stderr())
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	for deadline := time.Now().Add(10 * time.Second); len(servers()) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the gateway's SIGKILL, its stdio server lives on: pids %v", servers())
		}
	}
}
