package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/e2e/cdp"
	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// pageRecorder keeps the body of the last response a browser received:
// a walk that stops at a page reports only its text, not its link.
type pageRecorder struct {
	mu   sync.Mutex
	body string
}

func (p *pageRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	p.mu.Lock()
	p.body = string(b)
	p.mu.Unlock()
	return resp, nil
}

// failedSignIn walks b from the provider's answer (back) through mcpgate
// and expects the page of a failed sign-in: status, title and message.
// Its link back must take code to a's redirect URI with a's state and
// mcpgate's issuer, never a code.
func failedSignIn(t *testing.T, ctx context.Context, b *browser.Browser, back string, a *chromiumAuthz, status int, title, message, code string) {
	t.Helper()
	rec := &pageRecorder{}
	b.Client.Transport = rec
	done, err := b.Walk(ctx, back, a.redirect)
	var pe *browser.PageError
	if !errors.As(err, &pe) {
		t.Fatalf("callback at mcpgate ended at %v (%v); want the page %q", done, err, title)
	}
	if pe.Status != status || !strings.Contains(pe.Text, title) || !strings.Contains(pe.Text, message) {
		t.Fatalf("page %d %q; want %d titled %q, saying %q", pe.Status, pe.Text, status, title, message)
	}
	rec.mu.Lock()
	body := rec.body
	rec.mu.Unlock()
	href := ""
	if _, rest, ok := strings.Cut(body, `id="back" href="`); ok {
		href, _, _ = strings.Cut(rest, `"`)
	}
	link, err := url.Parse(html.UnescapeString(href))
	if err != nil || !strings.HasPrefix(link.String(), a.redirect+"?") {
		t.Fatalf("the page's link back %q (%v); want one to %s", href, err, a.redirect)
	}
	if q := link.Query(); q.Get("error") != code || q.Get("state") != a.state || q.Get("iss") != a.base || q.Has("code") {
		t.Fatalf("the link back gives the client %v; want %s with state and iss, no code", q, code)
	}
}

// A real Chromium whose person types a wrong password at a real OpenID
// provider: the provider answers access_denied to mcpgate's callback,
// which shows the page that the provider did not sign them in (403, its
// CSP honoured, no framing), and the page's link takes Chromium to the
// client's redirect URI with access_denied, state and iss, no code.
func TestChromiumFailedSignInPage(t *testing.T) {
	path := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := freePort(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"}}},
		Users:   []oidctest.User{{Sub: "u-1", Email: "a@corp.example", EmailVerified: true, Password: "right"}},
	})
	p := startBinary(t, port, "--data-dir", t.TempDir(), "--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret")
	defer p.stop(t)
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	authz := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "Failing Client", cb), cb)

	br, err := cdp.Launch(ctx, path)
	if err != nil {
		t.Fatalf("launching Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := br.Close(); err != nil {
			t.Errorf("closing Chromium: %v", err)
		}
	})
	if err := br.Call(ctx, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));`}, nil); err != nil {
		t.Fatal(err)
	}
	page := br.ExpectResponse(p.base + "/callback/oidc")
	defer page.Stop()
	back := br.ExpectRequest(cb)
	defer back.Stop()
	if err := br.Navigate(ctx, authz.url()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, br, `document.querySelector("button[name=decision][value=allow]")`)
	click(t, ctx, br, `document.querySelector("button[name=decision][value=allow]")`)
	waitFor(t, ctx, br, `location.origin === `+jsString(strings.TrimSuffix(op.Issuer(), "/"))+` && document.querySelector("input[name=password]")`)
	click(t, ctx, br, `(() => {
	const form = document.querySelector("input[name=password]").form;
	form.querySelector("input[name=username]").value = "u-1";
	form.querySelector("input[name=password]").value = "wrong";
	return form.querySelector("button[type=submit]");
})()`)

	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	resp, err := page.Wait(wctx)
	if err != nil {
		t.Fatalf("Chromium never got mcpgate's callback: %v\n%s", err, p.Stderr())
	}
	if resp.Status != http.StatusForbidden {
		t.Fatalf("the callback answered %d; want the 403 page", resp.Status)
	}
	checkNoFraming(t, resp.Headers)
	iss, _ := url.Parse(op.Issuer())
	title := iss.Hostname() + " did not sign you in"
	waitFor(t, ctx, br, `document.querySelector("h1") && document.querySelector("h1").textContent === `+jsString(title))
	checkCSPHonoured(t, ctx, br, "the failed sign-in page")
	var text string
	if err := br.Eval(ctx, `document.querySelector("a#back").textContent`, &text); err != nil || text != "Back to the application" {
		t.Fatalf("the page's link reads %q (%v); want Back to the application", text, err)
	}
	click(t, ctx, br, `document.querySelector("a#back")`)
	req, err := back.Wait(wctx)
	if err != nil {
		t.Fatalf("Chromium never followed the link to the redirect URI: %v", err)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); q.Get("error") != "access_denied" || q.Get("state") != authz.state || q.Get("iss") != p.base || q.Has("code") {
		t.Fatalf("the link took Chromium to %s; want access_denied with state and iss, no code", req.URL)
	}
}
