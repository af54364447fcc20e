package bridge

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

func probeOptions(t *testing.T, mode string) StdioOptions {
	return StdioOptions{Command: []string{os.Args[0]}, Env: []string{fakeEnv + "=" + mode}, Dir: t.TempDir(), Resource: "/mcp"}
}

// `mcpgate check` starts a stdio server as serve would and hears its
// initialize answer; neither the probe's directory nor the directories
// made for it stay behind.
func TestProbeStdio(t *testing.T) {
	opts := probeOptions(t, "server")
	opts.Dir = filepath.Join(opts.Dir, "data", "stdio", "mcp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := ProbeStdio(ctx, opts)
	if err != nil {
		t.Fatalf("ProbeStdio: %v", err)
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
		ServerInfo      struct{ Name string }
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.ProtocolVersion == "" || res.ServerInfo.Name != "fake-stdio" {
		t.Errorf("initialize result %s (%v), want a protocolVersion and the fake server's name", raw, err)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(opts.Dir))); !os.IsNotExist(err) {
		t.Errorf("the data directory the probe made: %v, want it removed", err)
	}
	if entries, err := os.ReadDir(filepath.Dir(filepath.Dir(filepath.Dir(opts.Dir)))); err != nil || len(entries) != 0 {
		t.Errorf("left behind: %v (%v), want nothing", entries, err)
	}
}

// A server that dies at start fails the probe with its exit status and
// what it wrote on standard error that says what to fix: the line that
// names the failure, and the last lines.
func TestProbeStdioServerDies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := probeOptions(t, "dies")
	_, err := ProbeStdio(ctx, opts)
	if err == nil {
		t.Fatal("ProbeStdio of a server that exits: no error")
	}
	if _, err := os.Stat(userDir(opts.Dir, probeUser)); !os.IsNotExist(err) {
		t.Errorf("the probe's directory: %v, want it removed", err)
	}
	if _, err := os.Stat(opts.Dir); err != nil {
		t.Errorf("the directory that was there before: %v, want it kept", err)
	}
	for _, want := range []string{"the server ended: exit status 3", "its standard error: Error: Cannot find module '/srv/missing.js' | … | } | Node.js v22"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want it to say %q", err, want)
		}
	}
}

// A server that writes more lines at start than the gateway's log takes at
// once (SEC-124), hundreds of them, still fails the probe with the lines
// that say what to fix, its first error and its last words: the probe's
// tail is bounded by itself and is no log to spare.
func TestProbeStdioLoudServerDies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := ProbeStdio(ctx, probeOptions(t, "dies-loud"))
	if err == nil {
		t.Fatal("ProbeStdio of a server that exits: no error")
	}
	for _, want := range []string{"the server ended: exit status 3", "its standard error: Error: Cannot find module '/srv/missing.js' | … | } | Node.js v22"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want it to say %q", err, want)
		}
	}
}

// A server that never answers initialize fails the probe by its context's
// deadline, not the bridge's 30 s.
func TestProbeStdioNoAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := ProbeStdio(ctx, probeOptions(t, "sleeper"))
	if err == nil {
		t.Fatal("ProbeStdio of a server that never answers: no error")
	}
	if !strings.Contains(err.Error(), "no answer to initialize in time") {
		t.Errorf("error %q, want it to say that no answer came in time", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the probe took %s, want it to end soon after its 2 s deadline", d)
	}
}

// The probe removes only the empty directories it made: one that
// something else wrote to meanwhile stays, with what is in it.
func TestProbeRemovesOnlyEmptyDirectories(t *testing.T) {
	made := filepath.Join(t.TempDir(), "data")
	dir := filepath.Join(made, "stdio", "mcp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(made, "mcpgate.db")
	if err := os.WriteFile(db, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	removeEmpty(dir, made)
	if _, err := os.Stat(filepath.Join(made, "stdio")); !os.IsNotExist(err) {
		t.Errorf("the empty stdio directory: %v, want it removed", err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the file another process wrote: %v, want it kept", err)
	}
}

// A serve that starts while a check's probe runs on a new data directory
// finds its directory gone when the probe ends (the probe made it, and it
// is empty until a user's first request): the user's first server then
// makes it again with the modes NewStdio gives it, searchable above the
// data directory, not 0700 all the way, which under a uid of the user's
// own would leave the server unable to reach its home (SEC-22).
func TestProbeBesideAStartingServe(t *testing.T) {
	opts := probeOptions(t, "sleeper")
	top := filepath.Join(opts.Dir, "data")
	opts.Dir = filepath.Join(top, "stdio", "mcp")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	probed := make(chan error, 1)
	go func() {
		_, err := ProbeStdio(ctx, opts)
		probed <- err
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(userDir(opts.Dir, probeUser)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe made no directory of its own")
		}
	}
	serve := opts
	serve.Env = []string{fakeEnv + "=server"}
	pool, err := NewStdio(serve)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	<-probed
	caller := &identity.Caller{User: identity.User{ID: "local:alice"}, ClientID: "c"}
	l, err := pool.acquire(context.Background(), caller, initParams{version: bridgeVersion})
	if err != nil {
		t.Fatalf("the serve's first server: %v", err)
	}
	pool.release(l)
	for dir, want := range map[string]os.FileMode{top: 0o711, filepath.Join(top, "stdio"): 0o711, opts.Dir: 0o700} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want %v", dir, fi.Mode().Perm(), want)
		}
	}
}
