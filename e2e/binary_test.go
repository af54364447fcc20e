package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcpgate-e2e")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "mcpgate")
	build := exec.Command("go", "build", "-o", binPath, "../cmd/mcpgate")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building mcpgate failed:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago. Tokens are
// bound to the issuer's port, so a restart must reuse it.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is a running mcpgate binary.
type process struct {
	cmd    *exec.Cmd
	base   string
	mu     sync.Mutex
	stdout strings.Builder
	stderr strings.Builder
	done   chan error
}

func (p *process) Stdout() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stdout.String() }
func (p *process) Stderr() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }

// stderrHas reports whether the binary's log holds s within 10 s: an info
// line reaches stderr within the log buffer's delay (200 ms), not at once.
func (p *process) stderrHas(s string) bool { return within10s(p.Stderr, s) }

// stdoutHas reports whether the binary's standard output holds s within
// 10 s: what it printed before it answered /healthz may still be in the
// pipe to this process.
func (p *process) stdoutHas(s string) bool { return within10s(p.Stdout, s) }

func within10s(read func() string, s string) bool {
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(read(), s); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// settledStderr returns the binary's log once every line logged before
// the call is in it, for a check that a line is not there: the log is
// buffered, so it asks /healthz and waits for that request's access line
// (found by its X-Request-Id), which the buffer writes after every
// earlier line.
func (p *process) settledStderr(t *testing.T) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(p.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" || !p.stderrHas(`"request_id":"`+id+`"`) {
		t.Fatalf("the access line of GET /healthz (X-Request-Id %q) did not reach the log in 10 s", id)
	}
	return p.Stderr()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startBinary runs `mcpgate serve args…` and waits until /healthz answers.
func startBinary(t *testing.T, port int, args ...string) *process {
	t.Helper()
	return startBinaryWith(t, port, binaryOpts{}, args...)
}

// binaryOpts change how startBinaryWith runs the binary.
type binaryOpts struct {
	env  []string            // added to the environment
	cred *syscall.Credential // the user to run it as (default: the test's)
}

// startBinaryWith is startBinary with opts.
func startBinaryWith(t *testing.T, port int, opts binaryOpts, args ...string) *process {
	t.Helper()
	argv := append([]string{binPath, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, args...)
	return startProcess(t, fmt.Sprintf("http://127.0.0.1:%d", port), argv, opts)
}

// startCommand runs the command line argv, an mcpgate serve that answers
// at base, with env added to the environment, and waits until /healthz
// answers.
func startCommand(t *testing.T, base string, argv, env []string) *process {
	t.Helper()
	return startProcess(t, base, argv, binaryOpts{env: env})
}

func startProcess(t *testing.T, base string, argv []string, opts binaryOpts) *process {
	t.Helper()
	p := &process{base: base, done: make(chan error, 1)}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(append(os.Environ(), "MCPGATE_LOG_FORMAT=json"), opts.env...)
	if opts.cred != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: opts.cred}
	}
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("mcpgate exited early: %v\nstdout: %s\nstderr: %s", err, p.Stdout(), p.Stderr())
		default:
		}
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("mcpgate did not become healthy\nstderr: %s", p.Stderr())
	return nil
}

// stop sends SIGTERM and expects a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.stopWith(t, syscall.SIGTERM)
}

// stopWith sends sig and expects a clean exit.
func (p *process) stopWith(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("mcpgate exited with %v after %v\nstderr: %s", err, sig, p.Stderr())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("mcpgate did not stop after %v", sig)
	}
}

func refresh(t *testing.T, base, clientID, rt string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(base+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// The built binary, end to end: the go-sdk client through DCR, PKCE,
// login and consent to whoami; then a refresh; then a restart on the same
// data (SIGTERM, a clean exit), after which the rotated refresh token and
// the access tokens still work and the replaced refresh token does not.
func TestBinaryFlowRefreshRestart(t *testing.T) {
	flowRefreshRestart(t, binaryOpts{})
}

// The same on PostgreSQL, its DSN (with a password) in MCPGATE_STORE: the
// store is the database, and the password never reaches the log.
func TestBinaryFlowRefreshRestartPostgres(t *testing.T) {
	const pgPassword = "pg-s3cret-pw" // the test server trusts loopback and ignores it
	dsn := strings.Replace(pgtest.Start(t), "postgres://postgres@", "postgres://postgres:"+pgPassword+"@", 1)
	p := flowRefreshRestart(t, binaryOpts{env: []string{"MCPGATE_STORE=" + dsn}})
	if strings.Contains(p.Stderr()+p.Stdout(), pgPassword) {
		t.Fatal("the store DSN's password reached the log or stdout, want it nowhere")
	}
	if !strings.Contains(p.Stderr(), `"store":"postgres"`) {
		t.Errorf("log does not name the postgres store:\n%s", p.Stderr())
	}
}

// flowRefreshRestart runs the test above with opts and returns the
// process after the restart, stopped.
func flowRefreshRestart(t *testing.T, opts binaryOpts) *process {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	port := freePort(t)
	// No grace window: the replayed token below must be refused, not
	// answered with its successor (refresh_grace_test.go covers the window).
	args := []string{"--data-dir", dir, "--local-user", user + ":" + password, "--refresh-grace", "off"}
	p := startBinaryWith(t, port, opts, args...)

	h, _ := oauthClient(t)
	m := whoami(t, ctx, mcpStreamable{p.base + "/mcp", h}.transport())
	if u, _ := m["user"].(map[string]any); u["sub"] != "local:alice" {
		t.Fatalf("whoami: %v, want user.sub local:alice", m)
	}
	ts, _ := h.TokenSource(ctx)
	first, err := ts.Token()
	if err != nil || first.RefreshToken == "" {
		t.Fatalf("token: %v, want a token with a refresh token", err)
	}
	clientID := clientIDOf(t, first.AccessToken)

	status, rotated := refresh(t, p.base, clientID, first.RefreshToken)
	if status != 200 {
		t.Fatalf("refresh: %d %v, want 200", status, rotated)
	}
	p.stop(t)
	if strings.Contains(p.Stderr(), password) || strings.Contains(p.Stderr(), first.RefreshToken) || strings.Contains(p.Stderr(), first.AccessToken) {
		t.Fatal("TOK-4: the password or a token reached the log, want none there")
	}

	p2 := startBinaryWith(t, port, opts, args...)
	// The signing key survived: the access token from before the restart still works.
	whoami(t, ctx, staticTransport(p2.base+"/mcp", rotated["access_token"].(string)))
	status, again := refresh(t, p2.base, clientID, rotated["refresh_token"].(string))
	if status != 200 {
		t.Fatalf("rotated refresh token after restart: %d %v, want 200", status, again)
	}
	whoami(t, ctx, staticTransport(p2.base+"/mcp", again["access_token"].(string)))
	if status, _ := refresh(t, p2.base, clientID, first.RefreshToken); status != 400 {
		t.Fatalf("RT-1: the replaced refresh token after restart: %d, want 400", status)
	}
	p2.stop(t)
	return p2
}

// First start with no users: admin is created, its password printed once
// on stdout with the addresses of the MCP endpoint and the account page,
// and it logs in; a restart prints no new password.
func TestBinaryFirstStartAdmin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	port := freePort(t)
	p := startBinary(t, port, "--data-dir", dir)
	// The banner's lines, printed after the password's.
	for _, want := range []string{"MCP endpoint: " + p.base + "/mcp\n", "Account page: " + p.base + "/account (admin console: " + p.base + "/admin)\n"} {
		if !p.stdoutHas(want) {
			t.Errorf("stdout lacks %q:\n%s", want, p.Stdout())
		}
	}
	match := regexp.MustCompile(`Created local user "admin" with password: (\S+)`).FindStringSubmatch(p.Stdout())
	if match == nil {
		t.Fatalf("no admin password printed:\n%s", p.Stdout())
	}
	if strings.Contains(p.Stderr(), match[1]) {
		t.Fatal("the admin password reached the log, want it on stdout only")
	}
	h, b := oauthClient(t)
	b.Username, b.Password = "admin", match[1]
	m := whoami(t, ctx, mcpStreamable{p.base + "/mcp", h}.transport())
	if u, _ := m["user"].(map[string]any); u["sub"] != "local:admin" {
		t.Fatalf("whoami: %v, want user.sub local:admin", m)
	}
	p.stop(t)
	p2 := startBinary(t, port, "--data-dir", dir)
	p2.stop(t) // its whole output read
	if strings.Contains(p2.Stdout(), "password") {
		t.Fatalf("a second start printed a password:\n%s", p2.Stdout())
	}
	if info, err := os.Stat(filepath.Join(dir, "secret.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret key file: %v %v, want it with mode 0600", err, info)
	}
}

// SIGHUP (the terminal serve runs in closed, or an operator's reload,
// which mcpgate has none of) stops it as SIGTERM does: the requests in
// flight finish and the buffered log lines are written. Fails before: the
// process died at once, exit status 129, its last log lines lost.
func TestBinarySIGHUPShutsDownCleanly(t *testing.T) {
	// A test run under nohup hands the gateway an ignored SIGHUP, which
	// it keeps ignored (TestBinarySIGHUPIgnoredUnderNohup). Caught here,
	// it is the default again in the process started.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	p := startBinary(t, freePort(t), "--data-dir", t.TempDir(), "--local-user", "a:b")
	p.stopWith(t, syscall.SIGHUP)
	if !p.stderrHas("shutting down") {
		t.Fatalf("mcpgate stopped after SIGHUP without its shutdown\nstderr: %s", p.Stderr())
	}
}

// Under nohup, which makes SIGHUP ignored, SIGHUP stays ignored: serve
// asks for it only when it is not, since asking would undo nohup. Fails
// with SIGHUP always asked for: the gateway shut down.
func TestBinarySIGHUPIgnoredUnderNohup(t *testing.T) {
	port := freePort(t)
	p := startProcess(t, fmt.Sprintf("http://127.0.0.1:%d", port),
		[]string{"nohup", binPath, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", t.TempDir(), "--local-user", "a:b"}, binaryOpts{})
	p.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	if resp, err := http.Get(p.base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz after SIGHUP under nohup: %v %v, want 200 (SIGHUP ignored)", err, resp)
	}
	p.stop(t)
}

// A committed write survives SIGTERM: a client registered just before the
// signal is known after the restart.
func TestBinaryGracefulShutdownKeepsWrites(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startBinary(t, port, "--data-dir", dir, "--local-user", "a:b")
	resp, err := http.Post(p.base+"/register", "application/json", strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("register: %v %v, want 201", err, resp)
	}
	var reg map[string]any
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	p.stop(t)
	p2 := startBinary(t, port, "--data-dir", dir, "--local-user", "a:b")
	q := url.Values{"client_id": {reg["client_id"].(string)}, "redirect_uri": {"http://127.0.0.1:5/cb"}, "response_type": {"code"},
		"code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
	r, err := http.Get(p2.base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.Contains(string(body), "csrf_token") {
		t.Fatalf("registration lost across restart: %d %s, want the consent page (200 with a CSRF token)", r.StatusCode, body)
	}
	p2.stop(t)
}

// A bad configuration never starts: every problem is reported, exit 2.
func TestBinaryRejectsBadConfiguration(t *testing.T) {
	out, err := exec.Command(binPath, "serve", "--listen", "nonsense", "--public-url", "http://example.com", "--local-user", "nopass", "--store", "mysql://x").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want exit status 2\n%s", err, out)
	}
	for _, want := range []string{"listen", "public_url", "--local-user (the 1st given)", "store"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	out, err = exec.Command(binPath, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "mcpgate ") {
		t.Fatalf("version: %v %s, want \"mcpgate …\"", err, out)
	}
}

// Several bad values at once, from each source: the binary lists every
// one, by the flag, variable or file key (and line) that holds it, and the
// problems of the values it could read, and exits 2.
func TestBinaryRejectsEveryProblemOfEverySource(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(file, []byte("max_connections: 0\nmax_sessions_per_user: off\nstdio_isolation: x\nunused_client_expiry: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"flags", []string{"--max-connections", "0", "--request-read-timeout", "0", "--stdio-isolation", "x", "--unused-client-expiry", "1h"}, nil,
			[]string{`--max-connections: "0"`, `--request-read-timeout: "0"`, "stdio_isolation:", "unused_client_expiry:"}},
		{"variables", nil, []string{"MCPGATE_MAX_CONNECTIONS=0", "MCPGATE_REQUEST_READ_TIMEOUT=0", "MCPGATE_STDIO_ISOLATION=x",
			"MCPGATE_UNUSED_CLIENT_EXPIRY=1h", "MCPGATE_STDIO_UID_RANGE=5"},
			[]string{`MCPGATE_MAX_CONNECTIONS: "0"`, `MCPGATE_REQUEST_READ_TIMEOUT: "0"`, "stdio_isolation:", "unused_client_expiry:", "stdio_uid_range:"}},
		{"file", []string{"--config", file}, nil,
			[]string{"max_connections (" + file + ", line 1)", "max_sessions_per_user (" + file + `, line 2): "off" is not a whole number`,
				"stdio_isolation:", "unused_client_expiry:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binPath, append([]string{"serve", "--data-dir", t.TempDir()}, tc.args...)...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want exit status 2\n%s", err, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), "  - "+want) {
					t.Errorf("no problem says %q in:\n%s", want, out)
				}
			}
		})
	}
}

// A configuration file with a pre-registered client (REG-1) and a local
// user whose password comes from the environment ($VAR expansion) drives
// the binary.
func TestBinaryConfigFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mcpgate.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
data_dir: %s
local_users: ["%s:${E2E_PASSWORD}"]
clients:
  - id: static-e2e
    name: Static E2E
    redirect_uris: ["%s"]
`, filepath.Join(dir, "data"), user, callback)), 0o600)
	port := freePort(t)
	t.Setenv("E2E_PASSWORD", password)
	p := startBinary(t, port, "--config", cfg)
	b := browser.New(user, password)
	verifier := strings.Repeat("v", 50)
	q := url.Values{"client_id": {"static-e2e"}, "redirect_uri": {callback}, "response_type": {"code"}, "state": {"s1"},
		"code_challenge": {tokens.S256(verifier)}, "code_challenge_method": {"S256"}}
	code, state, _, err := b.Authorize(ctx, p.base+"/authorize?"+q.Encode(), callback)
	if err != nil || state != "s1" {
		t.Fatalf("authorize with the static client: %v, state %q; want a code and state s1", err, state)
	}
	resp, err := http.PostForm(p.base+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"client_id": {"static-e2e"}, "redirect_uri": {callback}, "code_verifier": {verifier}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("token: %v %v, want 200", err, resp)
	}
	resp.Body.Close()
	p.stop(t)
}
