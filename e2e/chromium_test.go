package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/cdp"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store/memory"
)

// A real headless Chromium, driven over the DevTools protocol, walks mcpgate's consent
// and login pages as a person would: what the browser does with the pages' CSP and
// X-Frame-Options, with SameSite=Lax cookies, with the form posts and with the 302
// chain to the client's loopback redirect URI is checked here, where the e2e/browser
// form-follower only shows what a Go HTTP client does.
//
//  1. consent and login: the consent page shows the client's name and renders under
//     its own CSP (no violation, its inline style applied); Allow leads to the login
//     form; signing in ends with a 302 to the redirect URI whose code, state and iss
//     are right; the browser holds the HttpOnly, SameSite=Lax session cookie; the code
//     buys an access token with the PKCE verifier, and /mcp accepts the token.
//  2. remembered consent: a second authorization for the same client in the same
//     browser goes from /authorize straight to the redirect URI, with no page shown:
//     Chromium sent the session cookie.
//  3. no framing: a page on another origin that frames a consent page gets Chromium's
//     error page in the frame, not the consent form: Chromium received
//     X-Frame-Options: DENY and CSP frame-ancestors 'none' and blocked the response.
func TestChromiumConsentAndLogin(t *testing.T) {
	begin := time.Now()
	defer func() { t.Logf("TestChromiumConsentAndLogin took %v", time.Since(begin).Round(time.Millisecond)) }()
	path := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	srv := startGateway(t, ctx, mcpgate.Config{Store: memory.New()})

	// Nothing listens at the redirect URI: Chromium's request for it is the result.
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	const clientName = "Chromium E2E Client"
	clientID := chromiumRegister(t, srv.URL, clientName, cb)

	b, err := cdp.Launch(ctx, path)
	if err != nil {
		t.Fatalf("launching Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() { // before srv.Close: Cleanup runs last-in first-out
		if err := b.Close(); err != nil {
			t.Errorf("closing Chromium: %v", err)
		}
	})
	// Record every CSP violation of every document, from its first moment.
	if err := b.Call(ctx, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));`}, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("Chromium up after %v", time.Since(begin).Round(time.Millisecond))

	loggedIn := t.Run("consent and login", func(t *testing.T) {
		a := newChromiumAuthz(srv.URL, clientID, cb)
		pages := b.ExpectResponse(srv.URL + "/authorize")
		defer pages.Stop()
		callback := b.ExpectRequest(cb)
		defer callback.Stop()

		if err := b.Navigate(ctx, a.url()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, b, `document.querySelector("button[name=decision][value=allow]")`)
		var text string
		if err := b.Eval(ctx, `document.querySelector("h1").innerText`, &text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, clientName) {
			t.Fatalf("the consent page's heading %q does not name the client %q", text, clientName)
		}
		consent, err := pages.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if consent.Status != 200 {
			t.Fatalf("consent page: HTTP %d, want 200", consent.Status)
		}
		checkNoFraming(t, consent.Headers)
		checkCSPHonoured(t, ctx, b, "consent page")

		shot := filepath.Join(t.TempDir(), "consent.png")
		if err := b.Screenshot(ctx, shot); err != nil {
			t.Fatal(err)
		}
		checkPNG(t, shot)

		click(t, ctx, b, `document.querySelector("button[name=decision][value=allow]")`)
		waitFor(t, ctx, b, `document.querySelector("input[name=password]")`)
		checkCSPHonoured(t, ctx, b, "login page")
		fill := fmt.Sprintf(`(() => {
	const form = document.querySelector("input[name=password]").form;
	form.querySelector("input[name=username]").value = %s;
	form.querySelector("input[name=password]").value = %s;
	return form.querySelector("button[type=submit]");
})()`, jsString(user), jsString(password))
		click(t, ctx, b, fill)

		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		req, err := callback.Wait(wctx)
		if err != nil {
			t.Fatalf("Chromium never requested the redirect URI: %v", err)
		}
		if req.RedirectedBy == nil || req.RedirectedBy.Status != http.StatusFound || !strings.HasPrefix(req.RedirectedBy.URL, srv.URL+"/login/") {
			t.Fatalf("the redirect URI was not reached by a 302 from the login form's post: %+v", req.RedirectedBy)
		}
		code := a.check(t, req.URL)

		// The browser keeps the login session as an HttpOnly, SameSite=Lax cookie.
		var jar struct {
			Cookies []struct {
				Name     string `json:"name"`
				SameSite string `json:"sameSite"`
				HTTPOnly bool   `json:"httpOnly"`
			} `json:"cookies"`
		}
		if err := b.Call(ctx, "Network.getCookies", map[string]any{"urls": []string{srv.URL + "/"}}, &jar); err != nil {
			t.Fatal(err)
		}
		var session bool
		for _, c := range jar.Cookies {
			if c.Name == "mcpgate_session" {
				session = true
				if !c.HTTPOnly || c.SameSite != "Lax" {
					t.Fatalf("session cookie in Chromium: %+v, want HttpOnly and SameSite=Lax", c)
				}
			}
		}
		if !session {
			t.Fatalf("Chromium holds no session cookie: %+v", jar.Cookies)
		}

		at := a.exchange(t, code)
		resp, body := chromiumInitialize(t, srv.URL, at)
		if resp.StatusCode != 200 {
			t.Fatalf("initialize with the token: %d %s, want 200", resp.StatusCode, body)
		}
	})

	t.Run("remembered consent", func(t *testing.T) {
		if !loggedIn {
			t.Fatal("needs the session of the \"consent and login\" sub-test, which failed")
		}
		a := newChromiumAuthz(srv.URL, clientID, cb)
		pages := b.ExpectResponse(srv.URL)
		defer pages.Stop()
		callback := b.ExpectRequest(cb)
		defer callback.Stop()

		// The page cannot load (nothing listens at the redirect URI).
		var nav *cdp.NavigateError
		if err := b.Navigate(ctx, a.url()); err != nil && !errors.As(err, &nav) {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		req, err := callback.Wait(wctx)
		if err != nil {
			t.Fatalf("Chromium never requested the redirect URI: %v", err)
		}
		if req.RedirectedBy == nil || req.RedirectedBy.Status != http.StatusFound || !strings.HasPrefix(req.RedirectedBy.URL, srv.URL+"/authorize?") {
			t.Fatalf("the redirect URI was not reached by a 302 straight from /authorize: %+v", req.RedirectedBy)
		}
		for _, r := range pages.All() {
			if r.Type == "Document" && r.Status != http.StatusFound {
				t.Fatalf("a page was shown on the way: HTTP %d %s", r.Status, r.URL)
			}
		}
		a.exchange(t, a.check(t, req.URL))
	})

	t.Run("consent page cannot be framed", func(t *testing.T) {
		// A second client, so that its consent page is shown (to the logged-in browser,
		// whose cookies go along: the attacker's page is on another port of 127.0.0.1,
		// the same site).
		a := newChromiumAuthz(srv.URL, chromiumRegister(t, srv.URL, "Framed Client", cb), cb)
		attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>Win a prize</title><iframe id="victim" src="%s" width="600" height="500"></iframe>`, html.EscapeString(a.url()))
		}))
		defer attacker.Close()

		framed := b.ExpectResponse(srv.URL + "/authorize")
		defer framed.Stop()
		failures := b.ExpectLoadingFailure()
		defer failures.Stop()
		callback := b.ExpectRequest(cb)
		defer callback.Stop()

		if err := b.Navigate(ctx, attacker.URL); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		resp, err := framed.Wait(wctx)
		if err != nil {
			t.Fatalf("the frame never got the consent page: %v", err)
		}
		frames, err := b.Frames(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Type != "Document" || resp.FrameID == "" || resp.FrameID == frames[0].ID {
			t.Fatalf("the consent page was not loaded in a child frame: %+v (main frame %s)", resp, frames[0].ID)
		}
		if resp.Status != 200 {
			t.Fatalf("framed consent page: HTTP %d, want 200 (refused by its headers, not its status)", resp.Status)
		}
		checkNoFraming(t, resp.Headers)

		// Chromium refuses the response...
		for {
			f, err := failures.Wait(wctx)
			if err != nil {
				t.Fatalf("Chromium did not block the framed consent page: %v", err)
			}
			if f.ID == resp.ID {
				if f.ErrorText != "net::ERR_BLOCKED_BY_RESPONSE" {
					t.Fatalf("the framed consent page failed with %s, want net::ERR_BLOCKED_BY_RESPONSE", f.ErrorText)
				}
				break
			}
		}
		// ...and shows its error page in the frame instead of the consent form.
		var frame cdp.Frame
		for frame.UnreachableURL == "" {
			frames, err := b.Frames(wctx)
			if err != nil {
				t.Fatalf("no error page in the frame: %v (frames %+v)", err, frames)
			}
			for _, f := range frames {
				if f.ID == resp.FrameID {
					frame = f
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if frame.UnreachableURL != a.url() || !strings.HasPrefix(frame.URL, "chrome-error:") {
			t.Fatalf("the frame shows %s (unreachable %s), want Chromium's error page for the consent URL", frame.URL, frame.UnreachableURL)
		}
		var noForm bool
		if err := b.EvalInFrame(ctx, frame.ID, `document.querySelector("button[name=decision], form[action='/consent']") === null`, &noForm); err != nil {
			t.Fatal(err)
		}
		if !noForm {
			t.Fatal("the consent form is rendered inside the attacker's frame")
		}
		if got := callback.All(); len(got) != 0 {
			t.Fatalf("the framing page reached the redirect URI: %+v", got)
		}
	})
}

// chromiumPath finds Chromium or fails the test, loudly: the test is part of make test
// and is never skipped.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := cdp.Find()
	if err != nil {
		t.Fatalf("CHROMIUM IS NOT INSTALLED: install Debian's chromium (scripts/install-tools.sh does), or set CHROMIUM to its path: %v", err)
	}
	return path
}

func waitFor(t *testing.T, ctx context.Context, b *cdp.Browser, cond string) {
	t.Helper()
	if err := b.WaitFor(ctx, cond, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// click clicks the element the JavaScript expression elem returns, as a person would
// (button clicks run the form's validation and submit it). The click runs after the
// evaluation has returned, so that the navigation it starts cannot cut the evaluation.
func click(t *testing.T, ctx context.Context, b *cdp.Browser, elem string) {
	t.Helper()
	js := `(() => {
	const el = (` + elem + `);
	if (!el) throw new Error("nothing to click");
	setTimeout(() => el.click(), 0);
})()`
	if err := b.Eval(ctx, js, nil); err != nil {
		t.Fatal(err)
	}
}

// checkNoFraming checks the headers Chromium received forbid every framing (DEP-3).
func checkNoFraming(t *testing.T, h http.Header) {
	t.Helper()
	if got := h.Get("X-Frame-Options"); got != "DENY" {
		t.Fatalf("X-Frame-Options %q, want DENY (headers %v)", got, h)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("Content-Security-Policy %q lacks frame-ancestors 'none'", csp)
	}
}

// checkCSPHonoured checks the page broke none of its own CSP and got its inline style
// (which the CSP must allow).
func checkCSPHonoured(t *testing.T, ctx context.Context, b *cdp.Browser, page string) {
	t.Helper()
	var violations []string
	if err := b.Eval(ctx, `window.__cspViolations`, &violations); err != nil {
		t.Fatal(err)
	}
	if violations == nil {
		t.Fatalf("%s: the CSP violation recorder did not run", page)
	}
	if len(violations) != 0 {
		t.Fatalf("%s: Chromium reported CSP violations: %q", page, violations)
	}
	var maxWidth string
	if err := b.Eval(ctx, `getComputedStyle(document.querySelector("main")).maxWidth`, &maxWidth); err != nil {
		t.Fatal(err)
	}
	if maxWidth == "none" || maxWidth == "" {
		t.Fatalf("%s: its stylesheet was not applied (main max-width %q)", page, maxWidth)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", path, err)
	}
	fi, _ := f.Stat()
	if cfg.Width == 0 || cfg.Height == 0 || fi.Size() < 1000 {
		t.Fatalf("screenshot %s: %dx%d, %d bytes; want a non-empty image of at least 1000 bytes", path, cfg.Width, cfg.Height, fi.Size())
	}
	t.Logf("consent page screenshot: %dx%d, %d bytes", cfg.Width, cfg.Height, fi.Size())
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// chromiumRegister registers a public client (DCR) and returns its id.
func chromiumRegister(t *testing.T, base, name, redirect string) string {
	t.Helper()
	reg, _ := json.Marshal(map[string]any{"client_name": name, "redirect_uris": []string{redirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}})
	resp, err := http.Post(base+"/register", "application/json", bytes.NewReader(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var c struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &c) != nil || c.ClientID == "" {
		t.Fatalf("register: %d %s, want 201 with a client_id", resp.StatusCode, body)
	}
	return c.ClientID
}

// chromiumAuthz is one authorization request with its PKCE verifier.
type chromiumAuthz struct {
	base, clientID, redirect, verifier, state string
	path                                      string // the resource's path; /mcp when empty
}

// resource is the resource URL asked for at /authorize and /token.
func (a *chromiumAuthz) resource() string {
	if a.path == "" {
		return a.base + "/mcp"
	}
	return a.base + a.path
}

func newChromiumAuthz(base, clientID, redirect string) *chromiumAuthz {
	return &chromiumAuthz{base: base, clientID: clientID, redirect: redirect, verifier: tokens.NewSecret() + "-pkce", state: tokens.NewID()}
}

func (a *chromiumAuthz) url() string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {a.clientID}, "redirect_uri": {a.redirect},
		"code_challenge": {tokens.S256(a.verifier)}, "code_challenge_method": {"S256"},
		"state": {a.state}, "resource": {a.resource()},
	}
	return a.base + "/authorize?" + q.Encode()
}

// check reads the authorization response Chromium was redirected to and returns its
// code, after checking state and iss (RFC 9207).
func (a *chromiumAuthz) check(t *testing.T, redirected string) string {
	t.Helper()
	u, err := url.Parse(redirected)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != a.redirect {
		t.Fatalf("redirected to %s, want %s", got, a.redirect)
	}
	q := u.Query()
	if q.Get("error") != "" {
		t.Fatalf("authorization error: %s, want a code", redirected)
	}
	if q.Get("state") != a.state {
		t.Fatalf("state %q, want %q", q.Get("state"), a.state)
	}
	if q.Get("iss") != a.base {
		t.Fatalf("iss %q, want %q", q.Get("iss"), a.base)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s, want one", redirected)
	}
	return q.Get("code")
}

// exchange redeems code at /token with the PKCE verifier and returns the access token.
func (a *chromiumAuthz) exchange(t *testing.T, code string) string {
	t.Helper()
	resp, err := http.PostForm(a.base+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "client_id": {a.clientID},
		"redirect_uri": {a.redirect}, "code_verifier": {a.verifier}, "resource": {a.resource()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %s, want 200 with an access token", resp.StatusCode, body)
	}
	return tok.AccessToken
}

// chromiumInitialize posts an MCP initialize to /mcp with the bearer token.
func chromiumInitialize(t *testing.T, base, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"chromium-e2e","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}
