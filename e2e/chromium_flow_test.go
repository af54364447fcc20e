package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/e2e/cdp"
	"github.com/mcpgate/mcpgate/store/memory"
)

// SEC-1, SEC-3: the login link of a request the attacker approved in their
// own browser, opened in the victim's Chromium, shows the consent page
// naming the attacker's application, not a login form. Only once the
// person allows there does the flow go on, in Chromium, with a login page
// that names the application; the attacker's link is then dead.
func TestChromiumSEC1_LoginLinkInAnotherBrowser(t *testing.T) {
	path := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startGateway(t, ctx, mcpgate.Config{Store: memory.New()}, [2]string{"bob", "bob e2e password"})
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	const clientName = "Attacker App"
	a := newChromiumAuthz(srv.URL, chromiumRegister(t, srv.URL, clientName, cb), cb)

	// The attacker approves their own request, outside Chromium.
	jar, _ := cookiejar.New(nil)
	attacker := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, page := fetch(t, attacker, "GET", a.url(), nil)
	resp, _ := fetch(t, attacker, "POST", srv.URL+"/consent", url.Values{"decision": {"allow"},
		"request_id": {browser.InputValue(page, "request_id")}, "csrf_token": {browser.InputValue(page, "csrf_token")}})
	link := srv.URL + resp.Header.Get("Location")
	if resp.StatusCode != 302 || !strings.HasPrefix(link, srv.URL+"/login/local?state=") {
		t.Fatalf("the attacker's consent: %d, Location %q, want 302 to a login link", resp.StatusCode, link)
	}

	b, err := cdp.Launch(ctx, path)
	if err != nil {
		t.Fatalf("launching Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("closing Chromium: %v", err)
		}
	})
	callback := b.ExpectRequest(cb)
	defer callback.Stop()
	if err := b.Navigate(ctx, link); err != nil {
		t.Fatal(err)
	}
	// Navigate returns with the response; the page is whole once its
	// form's last button is there (consent and login pages alike).
	waitFor(t, ctx, b, `document.readyState === "complete" && document.querySelector("form button[type=submit]")`)
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
	if shown.Password || !shown.Allow || !strings.Contains(shown.Heading, clientName) {
		t.Fatalf("SEC-1: the attacker's login link in Chromium shows %+v, want the consent page naming %q and no password field", shown, clientName)
	}

	click(t, ctx, b, `document.querySelector("button[name=decision][value=allow]")`)
	waitFor(t, ctx, b, `document.querySelector("input[name=password]")`)
	if r, _ := fetch(t, attacker, "GET", link, nil); r.StatusCode != 400 {
		t.Fatalf("SEC-1: the attacker's link after the person allowed: %d, want 400", r.StatusCode)
	}
	var heading string
	if err := b.Eval(ctx, `document.querySelector("h1").innerText`, &heading); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(heading, clientName) {
		t.Fatalf("SEC-3: the login page's heading %q does not name %q", heading, clientName)
	}
	click(t, ctx, b, fmt.Sprintf(`(() => {
	const form = document.querySelector("input[name=password]").form;
	form.querySelector("input[name=username]").value = %s;
	form.querySelector("input[name=password]").value = %s;
	return form.querySelector("button[type=submit]");
})()`, jsString("bob"), jsString("bob e2e password")))
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	req, err := callback.Wait(wctx)
	if err != nil {
		t.Fatalf("Chromium never requested the redirect URI after the person allowed and signed in: %v", err)
	}
	a.exchange(t, a.check(t, req.URL))
}

// fetch sends one request with c and returns the response and its body.
func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == "POST" {
		resp, err = c.PostForm(u, form)
	} else {
		resp, err = c.Get(u)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}
