package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/e2e/cdp"
	"github.com/mcpgate/mcpgate/store/memory"
)

// SEC-5: a page served from another port of 127.0.0.1, opened in a real
// Chromium where the person is signed in to a loopback gateway over plain
// http. The page's server sets the gateway's CSRF cookie to X, a value the
// attacker got from the gateway (Chromium keeps cookies per host, not per
// port: the person's own is replaced), then
//
//  1. posts the attacker's consent form, made under X: Chromium sends the
//     person's session and X along (same-site ignores ports too), and the
//     gateway refuses the post (403) because its Origin is the other port;
//     Chromium never requests the attacker's redirect URI;
//  2. opens the attacker's login link, bound to X: Chromium says the
//     navigation came from another origin (Sec-Fetch-Site), and the gateway
//     shows the consent page naming the attacker's application, not the
//     login form.
func TestChromiumSEC5_CrossPortPageRefused(t *testing.T) {
	path := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := startGateway(t, ctx, mcpgate.Config{Store: memory.New()})
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	own := newChromiumAuthz(srv.URL, chromiumRegister(t, srv.URL, "Own App", cb), cb)
	stolen := fmt.Sprintf("http://127.0.0.1:%d/stolen", freePort(t))
	const attackerApp = "Attacker App"
	attackerID := chromiumRegister(t, srv.URL, attackerApp, stolen)

	// The attacker, outside Chromium: one request left at its consent
	// page, one approved (its login link), both under the cookie X.
	jar, _ := cookiejar.New(nil)
	attacker := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, consentPage := fetch(t, attacker, "GET", newChromiumAuthz(srv.URL, attackerID, stolen).url(), nil)
	_, page := fetch(t, attacker, "GET", newChromiumAuthz(srv.URL, attackerID, stolen).url(), nil)
	resp, _ := fetch(t, attacker, "POST", srv.URL+"/consent", url.Values{"decision": {"allow"},
		"request_id": {browser.InputValue(page, "request_id")}, "csrf_token": {browser.InputValue(page, "csrf_token")}})
	link := srv.URL + resp.Header.Get("Location")
	if resp.StatusCode != 302 || !strings.HasPrefix(link, srv.URL+"/login/local?state=") {
		t.Fatalf("the attacker's consent: %d, Location %q, want 302 to a login link", resp.StatusCode, link)
	}
	gwURL, _ := url.Parse(srv.URL)
	var x string
	for _, c := range jar.Cookies(gwURL) {
		if c.Name == "mcpgate_csrf" {
			x = c.Value
		}
	}
	if x == "" {
		t.Fatal("the attacker's browser got no CSRF cookie")
	}

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "mcpgate_csrf", Value: x, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/post":
			fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/consent">
<input type="hidden" name="request_id" value="%s"><input type="hidden" name="csrf_token" value="%s">
<input type="hidden" name="decision" value="allow"></form><script>document.forms[0].submit()</script>`,
				html.EscapeString(srv.URL), html.EscapeString(browser.InputValue(consentPage, "request_id")), html.EscapeString(browser.InputValue(consentPage, "csrf_token")))
		case "/link":
			fmt.Fprintf(w, `<!doctype html><script>location.href = %s</script>`, jsString(link))
		default:
			http.NotFound(w, r)
		}
	}))
	defer evil.Close()

	b, err := cdp.Launch(ctx, path)
	if err != nil {
		t.Fatalf("launching Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("closing Chromium: %v", err)
		}
	})
	signInWithChromium(t, ctx, b, own)
	theft := b.ExpectRequest(stolen)
	defer theft.Stop()

	// 1. The consent post from the other port.
	posted := b.ExpectResponse(srv.URL + "/consent")
	defer posted.Stop()
	if err := b.Navigate(ctx, evil.URL+"/post"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	r, err := posted.Wait(wctx)
	if err != nil {
		t.Fatalf("Chromium never posted the other port's form to the gateway: %v", err)
	}
	if r.Status != http.StatusForbidden {
		t.Fatalf("SEC-5: the consent form posted from another port, with the person's session: HTTP %d, Location %q, want 403",
			r.Status, r.Headers.Get("Location"))
	}
	waitFor(t, ctx, b, `document.querySelector("h1") && document.querySelector("h1").innerText.includes("Request refused")`)

	// 2. The login link bound to X, opened from the other port's page.
	if err := b.Navigate(ctx, evil.URL+"/link"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, b, `location.href.startsWith(`+jsString(srv.URL+"/login/")+`) && document.readyState === "complete" && document.querySelector("h1")`)
	var shown struct {
		Heading  string `json:"heading"`
		Password bool   `json:"password"`
		Allow    bool   `json:"allow"`
	}
	if err := b.Eval(ctx, `({heading: document.querySelector("h1").innerText,
		password: document.querySelector("input[name=password]") !== null,
		allow: document.querySelector("button[name=decision][value=allow]") !== null})`, &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Password || !shown.Allow || !strings.Contains(shown.Heading, attackerApp) {
		t.Fatalf("SEC-5: the attacker's login link opened from another port shows %+v, want the consent page naming %q and no password field",
			shown, attackerApp)
	}
	if got := theft.All(); len(got) != 0 {
		t.Fatalf("SEC-5: Chromium requested the attacker's redirect URI: %+v", got)
	}
}

// signInWithChromium runs a whole flow of a in b, so that b holds a login
// session at the gateway.
func signInWithChromium(t *testing.T, ctx context.Context, b *cdp.Browser, a *chromiumAuthz) {
	t.Helper()
	callback := b.ExpectRequest(a.redirect)
	defer callback.Stop()
	if err := b.Navigate(ctx, a.url()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, b, `document.querySelector("button[name=decision][value=allow]")`)
	click(t, ctx, b, `document.querySelector("button[name=decision][value=allow]")`)
	waitFor(t, ctx, b, `document.querySelector("input[name=password]")`)
	click(t, ctx, b, fmt.Sprintf(`(() => {
	const form = document.querySelector("input[name=password]").form;
	form.querySelector("input[name=username]").value = %s;
	form.querySelector("input[name=password]").value = %s;
	return form.querySelector("button[type=submit]");
})()`, jsString(user), jsString(password)))
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	req, err := callback.Wait(wctx)
	if err != nil {
		t.Fatalf("signing in: Chromium never requested the redirect URI: %v", err)
	}
	a.check(t, req.URL)
}
