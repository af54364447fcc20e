package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
)

// nodeProc is a Node process of a real-client test, in its own process
// group: a failing test, or its context's end, kills the whole group (the
// process and whatever it started, such as a browser opener).
type nodeProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *safeBuffer
	stderr *safeBuffer
	exited chan struct{} // closed when Wait returned; err is then set
	err    error
}

// startNode runs node with args in dir, with env added to the test's
// environment (later entries win), bounded by ctx.
func startNode(t *testing.T, ctx context.Context, node, dir string, env []string, args ...string) *nodeProc {
	t.Helper()
	p := &nodeProc{stdout: &safeBuffer{}, stderr: &safeBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, node, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Cancel = func() error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }
	p.cmd.WaitDelay = 5 * time.Second
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", node, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", filepath.Base(args[0]), p.stdout, filepath.Base(args[0]), p.stderr)
		}
	})
	return p
}

// waitFor polls out until re matches, and returns the submatches; the
// process's exit or ctx's end first fails the test.
func (p *nodeProc) waitFor(t *testing.T, ctx context.Context, out *safeBuffer, re *regexp.Regexp) []string {
	t.Helper()
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		select {
		case <-p.exited:
			if m := re.FindStringSubmatch(out.String()); m != nil {
				return m
			}
			t.Fatalf("%s exited (%v) before printing %s", p.cmd.Path, p.err, re)
		case <-ctx.Done():
			t.Fatalf("%s printed no %s: %v", p.cmd.Path, re, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wait waits for the process to exit with status 0.
func (p *nodeProc) wait(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-p.exited:
	case <-ctx.Done():
		t.Fatalf("%s did not exit: %v", p.cmd.Path, ctx.Err())
	}
	if p.err != nil {
		t.Fatalf("%s: %v", p.cmd.Path, p.err)
	}
}

// whoamiOutput is the structured result of the demo server's whoami tool.
type whoamiOutput struct {
	User     identity.User `json:"user"`
	ClientID string        `json:"client_id"`
	Scopes   []string      `json:"scopes"`
	Resource string        `json:"resource"`
}

// tsResult is what e2e/testdata/tsclient.mjs prints after "RESULT ".
type tsResult struct {
	Mode                 string            `json:"mode"`
	ClientID             string            `json:"client_id"`
	AuthorizationRequest map[string]string `json:"authorization_request"`
	Iss                  string            `json:"iss"`
	TokenType            string            `json:"token_type"`
	Scope                string            `json:"scope"`
	ExpiresIn            float64           `json:"expires_in"`
	RefreshTokenLength   int               `json:"refresh_token_length"`
	Whoami               whoamiOutput      `json:"whoami"`
	Echo                 string            `json:"echo"`
	Refresh              struct {
		Outcome            string       `json:"outcome"`
		Rotated            bool         `json:"rotated"`
		NewAccessToken     bool         `json:"new_access_token"`
		RefreshTokenLength int          `json:"refresh_token_length"`
		Whoami             whoamiOutput `json:"whoami"`
	} `json:"refresh"`
}

var (
	tsAuthURL = regexp.MustCompile(`(?m)^AUTH_URL (\S+)$`)
	tsResultL = regexp.MustCompile(`(?m)^RESULT (.+)$`)
)

// runTSClient runs e2e/testdata/tsclient.mjs (a real @modelcontextprotocol/sdk
// client) with args, as the browser: when it prints its authorization URL,
// the headless form follower walks the consent and login pages up to
// redirect, and the script reads that final redirect on stdin. It returns
// the script's result.
func runTSClient(t *testing.T, ctx context.Context, redirect string, args ...string) tsResult {
	t.Helper()
	return runTSClientWith(t, ctx, browser.New(user, password), redirect, args...)
}

// runTSClientWith is runTSClient with b as the browser: b walks every page
// between the authorization URL and redirect (an OpenID provider's login
// form included).
func runTSClientWith(t *testing.T, ctx context.Context, b *browser.Browser, redirect string, args ...string) tsResult {
	t.Helper()
	node, sdk := node22(t), tssdkDir(t)
	script, err := os.ReadFile(filepath.Join("testdata", "tsclient.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// Bare imports resolve from the nearest node_modules up the tree: run the
	// script from a directory inside the SDK's tool directory.
	dir, err := os.MkdirTemp(sdk, "e2e-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "tsclient.mjs")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := os.ReadFile(filepath.Join(sdk, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err == nil {
		var pkg struct{ Version string }
		json.Unmarshal(v, &pkg)
		t.Logf("@modelcontextprotocol/sdk %s on %s", pkg.Version, node)
	}

	p := startNode(t, ctx, node, dir, nil, append([]string{path}, args...)...)
	authURL := p.waitFor(t, ctx, p.stdout, tsAuthURL)[1]
	final, err := b.Walk(ctx, authURL, redirect)
	if err != nil {
		t.Fatalf("walking %s: %v", authURL, err)
	}
	if _, err := fmt.Fprintln(p.stdin, final.String()); err != nil {
		t.Fatalf("handing the callback to the client: %v", err)
	}
	p.stdin.Close()
	p.wait(t, ctx)
	m := tsResultL.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no RESULT line:\n%s", p.stdout)
	}
	var r tsResult
	if err := json.Unmarshal([]byte(m[1]), &r); err != nil {
		t.Fatalf("RESULT: %v\n%s", err, m[1])
	}
	return r
}

// checkTSResult checks what every TypeScript SDK run must show: the user
// and client whoami names (before and after the refresh), the resource,
// the echo, iss (RFC 9207; the SDK does not check it), a refresh token and
// its rotation.
func checkTSResult(t *testing.T, r tsResult, base, clientID string) {
	t.Helper()
	for _, w := range []whoamiOutput{r.Whoami, r.Refresh.Whoami} {
		if w.User.ID != "local:alice" || w.User.Username != user {
			t.Errorf("whoami: %+v, want local:alice", w)
		}
	}
	checkTSFlow(t, r, base, clientID)
}

// checkTSFlow is checkTSResult without the user: whoami's client and
// resource (before and after the refresh), the authorization request, iss,
// the echo, a refresh token and its rotation.
func checkTSFlow(t *testing.T, r tsResult, base, clientID string) {
	t.Helper()
	for _, w := range []whoamiOutput{r.Whoami, r.Refresh.Whoami} {
		if w.ClientID != clientID || w.Resource != base+"/mcp" {
			t.Errorf("whoami: %+v, want client %s, resource %s/mcp", w, clientID, base)
		}
	}
	if r.ClientID != clientID {
		t.Errorf("the SDK's client_id is %q, want %q", r.ClientID, clientID)
	}
	if r.AuthorizationRequest["client_id"] != clientID || r.AuthorizationRequest["code_challenge_method"] != "S256" ||
		r.AuthorizationRequest["resource"] != base+"/mcp" {
		t.Errorf("authorization request: %v; want client_id %s, S256 and resource %s/mcp", r.AuthorizationRequest, clientID, base)
	}
	if r.Iss != base {
		t.Errorf("iss %q, want %q", r.Iss, base)
	}
	if r.Echo != "hello from the TypeScript SDK" {
		t.Errorf("echo: %q, want %q", r.Echo, "hello from the TypeScript SDK")
	}
	if !strings.EqualFold(r.TokenType, "bearer") || r.RefreshTokenLength == 0 {
		t.Errorf("tokens: type %q, refresh token of %d bytes; want bearer and a refresh token", r.TokenType, r.RefreshTokenLength)
	}
	if r.Refresh.Outcome != "AUTHORIZED" || !r.Refresh.Rotated || !r.Refresh.NewAccessToken {
		t.Errorf("refresh through the SDK: %+v, want AUTHORIZED, the refresh token rotated and a new access token", r.Refresh)
	}
	t.Logf("TypeScript SDK (%s): client_id %s; authorization request %v; token_type %s, scope %q, expires_in %v, refresh token of %d bytes (rotated on refresh: %d bytes)",
		r.Mode, r.ClientID, r.AuthorizationRequest, r.TokenType, r.Scope, r.ExpiresIn, r.RefreshTokenLength, r.Refresh.RefreshTokenLength)
}

// The MCP TypeScript SDK's client (@modelcontextprotocol/sdk, pinned, on
// Node 22) through the whole flow with dynamic client registration: it
// discovers from the 401, registers a public native client, authorizes
// with PKCE S256 and resource (the login and consent walked headlessly),
// trades the code, calls whoami and echo, and refreshes (rotation).
func TestTypeScriptSDK_DCR(t *testing.T) {
	begin := time.Now()
	defer func() { t.Logf("TestTypeScriptSDK_DCR took %v", time.Since(begin).Round(time.Millisecond)) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := realClientGateway(t, ctx, nil)
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))

	r := runTSClient(t, ctx, cb, "dcr", srv.URL+"/mcp", cb)
	if r.ClientID == "" || strings.HasPrefix(r.ClientID, "https://") {
		t.Fatalf("DCR client_id %q, want a registered (non-URL) client_id", r.ClientID)
	}
	checkTSResult(t, r, srv.URL, r.ClientID)
}

// The MCP TypeScript SDK's client with a Client ID Metadata Document: its
// clientMetadataUrl is an https URL on a local TLS host, which the gateway
// fetches (trusting the host's test CA, 127.0.0.1 allowed); the SDK skips
// registration because the metadata advertises CIMD, and whoami names the
// document URL as the client.
func TestTypeScriptSDK_CIMD(t *testing.T) {
	begin := time.Now()
	defer func() { t.Logf("TestTypeScriptSDK_CIMD took %v", time.Since(begin).Round(time.Millisecond)) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	docs := newCIMDHost(t)
	const docPath = "/oauth/tssdk-e2e-client.json"
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	clientID := docs.publish(docPath, "TypeScript SDK e2e (CIMD)", cb)
	srv := realClientGateway(t, ctx, docs)

	r := runTSClient(t, ctx, cb, "cimd", srv.URL+"/mcp", cb, clientID)
	checkTSResult(t, r, srv.URL, clientID)
	if docs.fetches(docPath) < 1 {
		t.Fatal("the gateway never fetched the metadata document, want at least one fetch (CIMD-2)")
	}
}
