package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// runCheck runs `mcpgate check args…` and returns its output and exit
// status.
func runCheck(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"check"}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("running mcpgate check: %v", err)
	}
	return out.String(), errb.String(), 0
}

// wantLines fails t unless every line of want is a line of out.
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || l == w
		}
		if !found {
			t.Errorf("no line %q in the output:\n%s", w, out)
		}
	}
}

// deleteCounter serves h and counts the DELETEs that ended a session.
type deleteCounter struct {
	h       http.Handler
	deletes atomic.Int32
}

func (d *deleteCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete && r.Header.Get("Mcp-Session-Id") != "" {
		d.deletes.Add(1)
	}
	d.h.ServeHTTP(w, r)
}

// `mcpgate check` green: the settings, the store and its key (before the
// first start and while serve runs on it), local accounts, a real OpenID
// provider's discovery, an upstream MCP server (initialize, then the
// session ended with DELETE) and the demo server each get an ok line, and
// it exits 0.
func TestBinaryCheckGreen(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{"http://127.0.0.1:1/callback/oidc"}}},
	})
	server := mcp.NewServer(&mcp.Implementation{Name: "check-upstream", Version: "1.2.3"}, nil)
	up := &deleteCounter{h: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)}
	ups := httptest.NewServer(up)
	defer ups.Close()

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "mcpgate.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %s
local_users: ["%s:%s"]
oidc_issuer: %s
oidc_client_id: mcpgate
oidc_client_secret: op-s3cret
resources:
  - {path: /mcp, upstream: %s/mcp}
  - {path: /demo}
`, data, user, password, op.Issuer(), ups.URL)), 0o600)

	common := []string{
		"ok   config   valid",
		"ok   store    sqlite " + filepath.Join(data, "mcpgate.db"),
		"ok   provider local accounts: 1 from local_users, and those the store holds",
		"ok   provider oidc " + op.Issuer() + ": discovery",
		"ok   upstream /demo the demo server, in mcpgate",
	}
	key := filepath.Join(data, "secret.key")
	out, errOut, code := runCheck(t, "--config", cfg)
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("check before the first start: exit %d, want 0 and no FAIL\n%s\nstderr: %s", code, out, errOut)
	}
	wantLines(t, out, append([]string{common[0], "ok   store    sqlite " + filepath.Join(data, "mcpgate.db") + ": none yet: mcpgate serve creates it at its first start",
		"ok   key      " + key + ": none yet, and a new store: mcpgate serve makes both at its first start"}, common[2:]...)...)
	// A check leaves no store behind: a mistyped --data-dir must not
	// become an empty store.
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the check before the first start made %s (%v), want nothing made", data, err)
	}

	p := startBinary(t, freePort(t), "--config", cfg)
	defer p.stop(t)
	// The start banner names every resource's endpoint.
	for _, want := range []string{"MCP endpoint: " + p.base + "/mcp\n", "MCP endpoint: " + p.base + "/demo\n"} {
		if !p.stdoutHas(want) {
			t.Errorf("the start banner lacks %q:\n%s", want, p.Stdout())
		}
	}
	before := up.deletes.Load()
	out, errOut, code = runCheck(t, "--config", cfg)
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("check while serve runs: exit %d, want 0 and no FAIL\n%s\nstderr: %s", code, out, errOut)
	}
	wantLines(t, out, append(common, "ok   key      "+key+" opens the store's signing keys")...)
	if !strings.Contains(out, "ok   upstream /mcp "+ups.URL+"/mcp: check-upstream 1.2.3, protocol ") {
		t.Errorf("no ok line for the upstream with its name and version:\n%s", out)
	}
	if n := up.deletes.Load() - before; n != 1 {
		t.Errorf("the upstream got %d DELETEs of a session from the check, want 1: the session it opened ended", n)
	}
	if strings.Contains(out+errOut, "op-s3cret") || strings.Contains(out+errOut, password) {
		t.Errorf("SEC-98: a secret in the output of check:\n%s\n%s", out, errOut)
	}
}

// `mcpgate check` red: an upstream on a closed port and an OpenID issuer
// that answers 404 each get a FAIL line saying why, the other checks still
// run, no secret is printed (SEC-98), and the exit status is 1; settings
// serve refuses exit 2, as serve.
func TestBinaryCheckRed(t *testing.T) {
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	untrusted := httptest.NewTLSServer(http.NotFoundHandler()) // a certificate no one signed
	defer untrusted.Close()
	closed := freePort(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "mcpgate.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %s
local_users: ["%s:%s"]
oidc_providers:
  - {name: corp, issuer: %s, client_id: mcpgate, client_secret: op-s3cret}
resources:
  - {path: /mcp, upstream: "http://127.0.0.1:%d/mcp"}
  - {path: /tls, upstream: "%s/mcp?api_key=query-s3cret"}
`, data, user, password, notFound.URL, closed, untrusted.URL)), 0o600)

	out, errOut, code := runCheck(t, "--config", cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\nstderr: %s", code, out, errOut)
	}
	wantLines(t, out,
		"ok   config   valid",
		"ok   store    sqlite "+filepath.Join(data, "mcpgate.db")+": none yet: mcpgate serve creates it at its first start",
		fmt.Sprintf("FAIL upstream /mcp http://127.0.0.1:%d/mcp: connection refused", closed),
		"FAIL provider corp: discovery at "+notFound.URL+": 404 Not Found (not a discovery document)",
	)
	// The TLS error quotes the URL: its query is hidden there too.
	if want := "FAIL upstream /tls " + untrusted.URL + "/mcp?…: "; !strings.Contains(out, want) {
		t.Errorf("no line beginning %q in the output:\n%s", want, out)
	}
	// A data directory that cannot be made (under a file): the store
	// fails, and nothing is made.
	file := filepath.Join(dir, "a-file")
	os.WriteFile(file, nil, 0o600)
	bad, _, code := runCheck(t, "--config", cfg, "--data-dir", filepath.Join(file, "data"))
	if want := "FAIL store    sqlite " + filepath.Join(file, "data", "mcpgate.db") + ": "; code != 1 || !strings.Contains(bad, want) || !strings.Contains(bad, "not a directory") {
		t.Errorf("a data directory under a file: exit %d, want 1 and a line starting %q:\n%s", code, want, bad)
	}
	for _, secret := range []string{"op-s3cret", password, "query-s3cret"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("SEC-98: %q in the output of check:\n%s\n%s", secret, out, errOut)
		}
	}

	// What serve refuses only once it builds the gateway (a resource at
	// one of its own paths, a client's invalid redirect URI) check
	// refuses too.
	for i, extra := range []string{
		"resources:\n  - {path: /token, upstream: \"http://127.0.0.1:1/mcp\"}\n",
		"clients:\n  - {id: app, redirect_uris: [\"not a uri\"]}\n",
	} {
		bad := filepath.Join(dir, fmt.Sprintf("serve-refuses-%d.yaml", i))
		os.WriteFile(bad, []byte(fmt.Sprintf("data_dir: %s\nlocal_users: [\"%s:%s\"]\n%s", data, user, password, extra)), 0o600)
		if out, errOut, code := runCheck(t, "--config", bad); code != 1 || !strings.Contains(out, "FAIL config") {
			t.Errorf("check of a configuration serve refuses (%q): exit %d, want 1 and FAIL config\n%s\n%s", extra, code, out, errOut)
		}
	}

	out, _, code = runCheck(t, "--data-dir", data, "--listen", "nonsense")
	if code != 2 {
		t.Fatalf("invalid settings: exit %d, want 2 as serve\n%s", code, out)
	}
	wantLines(t, out, "FAIL config   invalid: each problem is listed on standard error")
}

// `mcpgate check` starts a stdio server as serve would (the same sandbox,
// uid and read paths) and hears its initialize answer: ok for the
// reference everything server with the read path of its code; FAIL, with
// the server's own last words, for a script that does not exist and for
// the same server without the read path its code needs, which serve
// would answer 502 at the first request. The check makes no data
// directory.
func TestBinaryCheckStdio(t *testing.T) {
	node, entry := node22(t), everythingStdio(t)
	data := filepath.Join(sharedDir(t), "data")
	cmd := shellQuote(node) + " " + shellQuote(entry) + " stdio"

	out, errOut, code := runCheck(t, "--data-dir", data, "--stdio", cmd, "--stdio-read-path", packageRoot(entry))
	if code != 0 || !strings.Contains(out, "ok   upstream /mcp stdio "+node+": ") || !strings.Contains(out, ", protocol ") {
		t.Fatalf("the everything server with its read path: exit %d, want 0 and an ok line with its name and protocol\n%s\nstderr: %s", code, out, errOut)
	}
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the check made %s (%v), want nothing made", data, err)
	}

	missing := filepath.Join(t.TempDir(), "missing.js")
	out, errOut, code = runCheck(t, "--data-dir", data, "--stdio", shellQuote(node)+" "+shellQuote(missing))
	if code != 1 || !strings.Contains(out, "FAIL upstream /mcp stdio "+node+": the server ended: exit status 1") || !strings.Contains(out, "Cannot find module") {
		t.Errorf("a script that does not exist: exit %d, want 1 and a FAIL line with the exit status and node's complaint\n%s\nstderr: %s", code, out, errOut)
	}

	out, errOut, code = runCheck(t, "--data-dir", data, "--stdio", cmd)
	if code != 1 || !strings.Contains(out, "FAIL upstream /mcp stdio "+node+": the server ended:") || !strings.Contains(out, "for Node the one with node_modules, with --stdio-read-path") {
		t.Errorf("the everything server without the read path of its code: exit %d, want 1 and a FAIL line that says to add the read path\n%s\nstderr: %s", code, out, errOut)
	}
}

// A stdio server's initialize answer is its own text: `mcpgate check`
// prints its name, version and protocol version with every control
// character replaced, so that a server cannot write escape sequences to
// the operator's terminal (retitle it, clear it, rewrite the lines above).
func TestBinaryCheckStdioNamePrintable(t *testing.T) {
	script := `read line; id=$(printf %s "$line" | sed 's/.*"id":\([0-9]*\).*/\1/'); ` +
		`printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18\u001b[2J","capabilities":{},"serverInfo":{"name":"evil\u001b]0;owned\u0007","version":"1\u009b2J"}}}\n' "$id"; cat >/dev/null`
	data := filepath.Join(sharedDir(t), "data")
	out, errOut, code := runCheck(t, "--data-dir", data, "--stdio", "/bin/sh -c "+shellQuote(script))
	if code != 0 || !strings.Contains(out, "ok   upstream /mcp stdio /bin/sh: evil") {
		t.Fatalf("the server: exit %d, want 0 and an ok line with its name\n%q\nstderr: %s", code, out, errOut)
	}
	if strings.ContainsAny(out, "\x1b\x07\u009b") {
		t.Errorf("check's output carries the server's control characters: %q", out)
	}
}

// sleepers are the live (not zombie) processes whose command line is
// `sleep SECONDS` or `setsid sleep SECONDS`, with their uids.
func sleepers(t *testing.T, seconds string) map[int]string {
	t.Helper()
	found := map[int]string{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasSuffix(string(cmdline), "sleep\x00"+seconds+"\x00") {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil || strings.Contains(string(status), "State:\tZ") {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				var pid int
				fmt.Sscan(e.Name(), &pid)
				found[pid] = strings.Fields(v)[0]
			}
		}
	}
	return found
}

// SEC-22: a check's probe runs its server under a uid of its own, which a
// real user may get once the probe's directory is gone: every process of
// that uid ends with the probe, one that left the server's process group
// (setsid) included.
func TestBinaryCheckStdioEndsTheProbesUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs the stdio servers' uids: run it as root (CI does)")
	}
	seconds := fmt.Sprint(3000 + os.Getpid()%1000) // marks this test's process
	t.Cleanup(func() {
		for pid := range sleepers(t, seconds) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	script := `setsid sleep ` + seconds + ` </dev/null >/dev/null 2>&1 & ` +
		`read line; id=$(printf %s "$line" | sed 's/.*"id":\([0-9]*\).*/\1/'); ` +
		`printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"daemon","version":"1"}}}\n' "$id"; cat >/dev/null`
	data := filepath.Join(sharedDir(t), "data")
	out, errOut, code := runCheck(t, "--data-dir", data, "--stdio", "/bin/sh -c "+shellQuote(script))
	if code != 0 || !strings.Contains(out, "ok   upstream /mcp stdio /bin/sh: daemon") {
		t.Fatalf("the server: exit %d, want 0 and an ok line with its name\n%s\nstderr: %s", code, out, errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for left := sleepers(t, seconds); len(left) > 0; left = sleepers(t, seconds) {
		if time.Now().After(deadline) {
			t.Fatalf("after the check, the server's setsid child lives on: pid and uid %v, want it ended with the probe's uid", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// `mcpgate check` says what serve would warn of at start, and that an
// address is in use, as warn lines that fail nothing: the address may be
// the running gateway's own. Fails before: neither line, and a listen
// address in use went unsaid though serve stops there.
func TestBinaryCheckWarnsAsServeWould(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	out, errOut, code := runCheck(t, "--store", "memory", "--listen", addr, "--local-user", "bob:a-long-enough-password")
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("check: exit %d, want 0 and no FAIL\n%s\nstderr: %s", code, out, errOut)
	}
	wantLines(t, out, "warn listen   listen "+addr+": in use now (by a running mcpgate serve, or another program): serve would stop there")
	if !strings.Contains(out, "\nwarn config   a secret is on the command line") || !strings.Contains(out, "(flags: [--local-user])") {
		t.Errorf("no warn line for the password on the command line:\n%s", out)
	}
	ln.Close()
	out, _, _ = runCheck(t, "--store", "memory", "--listen", addr)
	wantLines(t, out, "ok   listen   listen "+addr+": free")
}
