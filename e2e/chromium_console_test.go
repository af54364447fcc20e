package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/e2e/cdp"
)

// bearerSeen records the access token a go-sdk client's OAuth handler
// sends, so that the test can send it again after a revocation without
// the handler signing in anew.
type bearerSeen struct {
	mu    sync.Mutex
	token string
}

func (b *bearerSeen) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		b.mu.Lock()
		b.token = tok
		b.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (b *bearerSeen) get() string { b.mu.Lock(); defer b.mu.Unlock(); return b.token }

// consoleBinary starts the binary with local accounts (and the config
// lines extra), runs a go-sdk client's whole flow as bob with one tool
// call, and returns the binary and the client's access token.
func consoleBinary(t *testing.T, ctx context.Context, extra string) (*process, string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	cfg := `local_users: ["bob:` + password + `", "admin:` + password + `"]` + "\n" + extra
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, freePort(t), "--data-dir", filepath.Join(dir, "data"), "--config", cfgPath)
	h, _ := oauthClientAs(t, "bob", password)
	seen := &bearerSeen{}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-console", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h, HTTPClient: &http.Client{Transport: seen}}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.Stderr())
	}
	t.Cleanup(func() { cs.Close() })
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}); err != nil || res.IsError {
		t.Fatalf("echo: %v %+v", err, res)
	}
	if seen.get() == "" {
		t.Fatal("the client's requests carried no bearer token")
	}
	if code := mcpStatus(t, p.base, seen.get()); code != http.StatusOK {
		t.Fatalf("the client's token: %d, want 200", code)
	}
	return p, seen.get()
}

// mcpStatus posts an MCP initialize with token and returns the status.
func mcpStatus(t *testing.T, base, token string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// launchChromium starts a headless Chromium, closed at the test's end.
func launchChromium(t *testing.T, ctx context.Context) *cdp.Browser {
	t.Helper()
	b, err := cdp.Launch(ctx, chromiumPath(t))
	if err != nil {
		t.Fatalf("launching Chromium: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("closing Chromium: %v", err)
		}
	})
	return b
}

// signInAt opens base+path in Chromium, which is sent to sign in, signs
// in as name with the local account form, and waits until Chromium is
// back at path (SEC-107).
func signInAt(t *testing.T, ctx context.Context, b *cdp.Browser, base, path, name string) {
	t.Helper()
	if err := b.Navigate(ctx, base+path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, b, `location.pathname === "/signin" && document.querySelector("form[action='/signin'] button")`)
	click(t, ctx, b, `document.querySelector("form[action='/signin'] button")`)
	waitFor(t, ctx, b, `document.readyState === "complete" && document.querySelector("input[name=password]")`)
	click(t, ctx, b, fmt.Sprintf(`(() => {
	const form = document.querySelector("input[name=password]").form;
	form.querySelector("input[name=username]").value = %s;
	form.querySelector("input[name=password]").value = %s;
	return form.querySelector("button[type=submit]");
})()`, jsString(name), jsString(password)))
	waitFor(t, ctx, b, fmt.Sprintf(`location.pathname === %s && document.readyState === "complete"`, jsString(path)))
}

// checkConsoleHeaders checks what every console page carries (SEC-108).
func checkConsoleHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	checkNoFraming(t, h)
	if h.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s: Cache-Control %q, want no-store", what, h.Get("Cache-Control"))
	}
}

// SEC-107, SEC-108, SEC-109 in Chromium against the binary: after a
// go-sdk client's flow as bob, bob opens /account, signs in, sees the
// client, and a page of another origin can neither post its revoke form
// nor frame it; bob's click on Revoke ends the client's access: its next
// MCP call gets 401.
func TestChromiumAccountPage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, token := consoleBinary(t, ctx, "")
	b := launchChromium(t, ctx)

	account := b.ExpectResponse(p.base + "/account")
	defer account.Stop()
	signInAt(t, ctx, b, p.base, "/account", "bob")
	waitFor(t, ctx, b, `document.querySelector("table#grants tr[data-grant]")`)
	var shown struct {
		Rows     int    `json:"rows"`
		Row      string `json:"row"`
		Grant    string `json:"grant"`
		Viewport bool   `json:"viewport"`
	}
	if err := b.Eval(ctx, `(() => { const rows = document.querySelectorAll("table#grants tr[data-grant]");
	return {rows: rows.length, row: rows[0].innerText, grant: rows[0].dataset.grant,
		viewport: document.querySelector("meta[name=viewport]") !== null}; })()`, &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Rows != 1 || !strings.Contains(shown.Row, "go-sdk e2e") || !strings.Contains(shown.Row, "registered") ||
		!strings.Contains(shown.Row, p.base+"/mcp") || !shown.Viewport {
		t.Fatalf("SEC-109: /account shows %+v, want one row naming go-sdk e2e, registered, %s/mcp, and a viewport meta", shown, p.base)
	}
	phoneFits(t, ctx, b, p.base+"/account")
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	resp, err := account.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	checkConsoleHeaders(t, "/account", resp.Headers)

	// Another origin (another loopback port: same site, so the browser
	// sends the cookies) posts the revoke form without the page's token,
	// and frames the page.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/frame" {
			fmt.Fprintf(w, `<!doctype html><title>Frame</title><iframe id="victim" src="%s/account"></iframe>`, html.EscapeString(p.base))
			return
		}
		fmt.Fprintf(w, `<!doctype html><title>Win</title><form id="f" method="post" action="%s/account/revoke">
<input type="hidden" name="grant_id" value="%s"><input type="hidden" name="csrf_token" value="forged"></form>
<script>document.getElementById("f").submit()</script>`, html.EscapeString(p.base), html.EscapeString(shown.Grant))
	}))
	defer attacker.Close()
	forged := b.ExpectResponse(p.base + "/account/revoke")
	if err := b.Navigate(ctx, attacker.URL+"/post"); err != nil {
		t.Fatal(err)
	}
	got, err := forged.Wait(wctx)
	forged.Stop()
	if err != nil {
		t.Fatalf("the forged post never reached the gateway: %v", err)
	}
	if got.Status != http.StatusForbidden {
		t.Fatalf("SEC-108: the revoke form posted from another origin: %d, want 403", got.Status)
	}
	if code := mcpStatus(t, p.base, token); code != http.StatusOK {
		t.Fatalf("SEC-108: the client's token after the forged post: %d, want 200", code)
	}
	framedPageRefused(t, ctx, b, attacker.URL+"/frame", p.base+"/account")

	// Bob revokes the client in one click.
	if err := b.Navigate(ctx, p.base+"/account"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, b, `document.querySelector("table#grants tr[data-grant] button[name=revoke]")`)
	click(t, ctx, b, `document.querySelector("table#grants tr[data-grant] button[name=revoke]")`)
	waitFor(t, ctx, b, `document.querySelector("#done") && document.querySelector("#none") && !document.querySelector("tr[data-grant]")`)
	if code := mcpStatus(t, p.base, token); code != http.StatusUnauthorized {
		t.Fatalf("SEC-109: the client's next MCP call after the revocation: %d, want 401", code)
	}
}

// phoneFits opens u at a phone's width and checks that the page itself
// does not scroll sideways (a wide table scrolls in its own box) and its
// buttons are there; the window is as before after.
func phoneFits(t *testing.T, ctx context.Context, b *cdp.Browser, u string) {
	t.Helper()
	if err := b.Call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": true}, nil); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Call(ctx, "Emulation.clearDeviceMetricsOverride", nil, nil); err != nil {
			t.Error(err)
		}
	}()
	if err := b.Navigate(ctx, u); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, b, `document.readyState === "complete" && document.querySelector("table#grants button[name=revoke]")`)
	var fit struct {
		Width  int `json:"width"`
		Scroll int `json:"scroll"`
	}
	if err := b.Eval(ctx, `({width: window.innerWidth, scroll: document.documentElement.scrollWidth})`, &fit); err != nil {
		t.Fatal(err)
	}
	if fit.Width != 390 || fit.Scroll > fit.Width {
		t.Fatalf("%s at a phone's width: window %d px, page %d px wide; want 390 and no wider", u, fit.Width, fit.Scroll)
	}
}

// framedPageRefused opens framer, a page that frames target, and checks
// that Chromium got target's refusal headers and blocked it: the frame
// shows Chromium's error page, nothing of target (SEC-108).
func framedPageRefused(t *testing.T, ctx context.Context, b *cdp.Browser, framer, target string) {
	t.Helper()
	framed := b.ExpectResponse(target)
	defer framed.Stop()
	failures := b.ExpectLoadingFailure()
	defer failures.Stop()
	if err := b.Navigate(ctx, framer); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := framed.Wait(wctx)
	if err != nil {
		t.Fatalf("the frame never got %s: %v", target, err)
	}
	checkConsoleHeaders(t, "framed "+target, resp.Headers)
	for {
		f, err := failures.Wait(wctx)
		if err != nil {
			t.Fatalf("SEC-108: Chromium did not block the framed %s: %v", target, err)
		}
		if f.ID == resp.ID {
			if f.ErrorText != "net::ERR_BLOCKED_BY_RESPONSE" {
				t.Fatalf("SEC-108: the framed page failed with %s, want net::ERR_BLOCKED_BY_RESPONSE", f.ErrorText)
			}
			return
		}
	}
}

// SEC-111, SEC-109 in Chromium against the binary: bob, who is no
// administrator, gets 403 at /admin; the local admin sees the users, the
// client, the grant and the tool call bob's client made, and revokes the
// grant, whose access token then gets 401.
func TestChromiumAdminConsole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, token := consoleBinary(t, ctx, "admin_groups: [ops]\n")
	b := launchChromium(t, ctx)

	refused := b.ExpectResponse(p.base + "/admin")
	signInAt(t, ctx, b, p.base, "/admin", "bob")
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	for {
		resp, err := refused.Wait(wctx)
		if err != nil {
			t.Fatalf("no answer at /admin after bob signed in: %v", err)
		}
		if resp.Status != http.StatusSeeOther { // the first, before the sign-in
			if resp.Status != http.StatusForbidden {
				t.Fatalf("SEC-111: bob at /admin: %d, want 403", resp.Status)
			}
			checkConsoleHeaders(t, "403 at /admin", resp.Headers)
			break
		}
	}
	refused.Stop()
	waitFor(t, ctx, b, `document.querySelector("h1") && document.querySelector("h1").innerText.includes("Not an administrator")`)

	if err := b.Call(ctx, "Network.clearBrowserCookies", nil, nil); err != nil {
		t.Fatal(err)
	}
	signInAt(t, ctx, b, p.base, "/admin/users", "admin")
	// In this order: the grants page, last, is where the admin clicks.
	for _, page := range []struct{ path, want string }{
		{"/admin/users", `document.querySelector("table#local tr[data-user=bob]") && document.querySelector("table#seen tr[data-user='local:bob']")`},
		{"/admin/clients", `[...document.querySelectorAll("table#clients tr[data-client]")].some(r => r.innerText.includes("go-sdk e2e"))`},
		{"/admin/calls", `[...document.querySelectorAll("table#calls tbody tr")].some(r => r.innerText.includes("echo") && r.innerText.includes("local:bob") && r.innerText.includes("ok"))`},
		{"/admin/flows", `[...document.querySelectorAll("section.ok")].some(s => s.innerText.includes("token_code") && s.innerText.includes("local:bob"))`},
		{"/admin/grants", `document.querySelectorAll("table#grants tr[data-grant] button").length === 1`},
	} {
		path, want := page.path, page.want
		if err := b.Navigate(ctx, p.base+path); err != nil {
			t.Fatal(err)
		}
		if err := b.WaitFor(ctx, want, 10*time.Second); err != nil {
			var text string
			_ = b.Eval(ctx, `document.body.innerText`, &text)
			t.Fatalf("SEC-111: the admin at %s: %v\n%s", path, err, text)
		}
	}
	click(t, ctx, b, `document.querySelector("table#grants tr[data-grant] button")`)
	waitFor(t, ctx, b, `document.querySelector("#done") && document.querySelectorAll("table#grants tr[data-grant] button").length === 0`)
	if code := mcpStatus(t, p.base, token); code != http.StatusUnauthorized {
		t.Fatalf("SEC-109: bob's client after the admin's revocation: %d, want 401", code)
	}
}
