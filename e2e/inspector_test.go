package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

var inspectorNavigate = regexp.MustCompile(`Please navigate to: (\S+)`)

// MCP Inspector v2's CLI (pinned, on Node 22) against the built binary, as
// a person runs it: `mcp-inspector --cli --transport http --server-url
// …/mcp --method tools/call --tool-name echo --tool-arg text=…`, with no
// TTY (MCP_AUTO_OPEN_ENABLED=true lets it authorize anyway). It discovers,
// registers (DCR), prints "Please navigate to: <authorization URL>" on
// stderr and waits on its loopback callback; the headless form follower
// walks the consent and login pages up to that callback, and the test
// delivers the redirect to the CLI's listener as the browser would. The
// CLI trades the code and calls echo.
func TestMCPInspectorCLI(t *testing.T) {
	begin := time.Now()
	defer func() { t.Logf("TestMCPInspectorCLI took %v", time.Since(begin).Round(time.Millisecond)) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	gw := startBinary(t, freePort(t), "--data-dir", t.TempDir(), "--local-user", user+":"+password)
	const text = "hello from MCP Inspector"
	run := runInspectorCLI(t, ctx, browser.New(user, password), gw.base, "--tool-name", "echo", "--tool-arg", "text="+text)
	var result struct {
		Content []struct {
			Type, Text string
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &result); err != nil || result.IsError ||
		len(result.Content) != 1 || result.Content[0].Text != text {
		t.Fatalf("stdout is not the echo of %q (%v):\n%s", text, err, run.stdout)
	}
	t.Logf("MCP Inspector CLI: authorization request %v; callback answered %d\nstdout:\n%s\nstderr:\n%s", run.request, run.callbackStatus, run.stdout, run.stderr)
}

// inspectorRun is what one run of MCP Inspector's CLI showed.
type inspectorRun struct {
	request        url.Values // the authorization request, without code_challenge and state
	callbackStatus int        // what the CLI's callback listener answered
	stdout, stderr string
}

// runInspectorCLI runs MCP Inspector v2's CLI as `--cli --transport http
// --server-url BASE/mcp --method tools/call` and args (the tool and its
// arguments), with no TTY, and is its browser: b walks the authorization
// from the URL the CLI prints up to the CLI's loopback callback, and the
// redirect is delivered to that listener. It checks the authorization
// request (redirect_uri, S256, resource, a client_id) and response (code,
// state and iss), and that the CLI exits 0.
func runInspectorCLI(t *testing.T, ctx context.Context, b *browser.Browser, base string, args ...string) inspectorRun {
	t.Helper()
	node, cli := node22(t), inspectorCLI(t)
	// A callback port of its own, not the default 6276 that a developer's
	// Inspector may hold.
	cb := fmt.Sprintf("http://127.0.0.1:%d/oauth/callback", freePort(t))
	home := t.TempDir()
	env := []string{
		"HOME=" + home, "MCP_STORAGE_DIR=" + home + "/storage", "MCP_AUTO_OPEN_ENABLED=true", "NO_COLOR=1",
		"MCP_INSPECTOR_SECRET_STORE=memory",
		// It tries to open a browser (xdg-open, via the open package): make
		// that a no-op, whatever the machine has (BROWSER is what xdg-open
		// runs when it finds no desktop).
		"BROWSER=true", "DISPLAY=", "WAYLAND_DISPLAY=", "XDG_CURRENT_DESKTOP=", "DESKTOP_SESSION=",
		// The caller's Inspector settings must not leak in.
		"MCP_OAUTH_CALLBACK_URL=", "MCP_CLIENT_CONFIG_PATH=", "MCP_CATALOG_PATH=", "MCP_INSPECTOR_OAUTH_STATE_PATH=",
	}
	p := startNode(t, ctx, node, home, env, append([]string{cli, "--cli", "--transport", "http", "--server-url", base + "/mcp",
		"--callback-url", cb, "--method", "tools/call"}, args...)...)
	p.stdin.Close() // no TTY, no answers

	authURL := p.waitFor(t, ctx, p.stderr, inspectorNavigate)[1]
	au, err := url.Parse(authURL)
	if err != nil || !strings.HasPrefix(authURL, base+"/authorize?") {
		t.Fatalf("authorization URL %q: %v, want %s/authorize?…", authURL, err, base)
	}
	q := au.Query()
	if q.Get("redirect_uri") != cb || q.Get("code_challenge_method") != "S256" || q.Get("resource") != base+"/mcp" || q.Get("client_id") == "" {
		t.Errorf("authorization request: %v; want redirect_uri %s, S256, resource %s/mcp and a client_id", q, cb, base)
	}
	final, err := b.Walk(ctx, authURL, cb)
	if err != nil {
		t.Fatalf("walking %s: %v", authURL, err)
	}
	if fq := final.Query(); fq.Get("code") == "" || fq.Get("state") != q.Get("state") || fq.Get("iss") != base {
		t.Fatalf("the authorization response lacks code, state or iss: %v, want a code, state %q and iss %s", fq, q.Get("state"), base)
	}
	// Deliver the redirect to the CLI's callback listener, as a browser would.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, final.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the Inspector's callback: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the Inspector's callback answered %d, want 200", resp.StatusCode)
	}
	p.wait(t, ctx)
	q.Del("code_challenge")
	q.Del("state")
	return inspectorRun{request: q, callbackStatus: resp.StatusCode, stdout: p.stdout.String(), stderr: p.stderr.String()}
}
