package mcpgate_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/store"
)

// redirectQuery reads the error redirect of an /authorize response.
func redirectQuery(t *testing.T, loc string) url.Values {
	t.Helper()
	return redirectQueryTo(t, loc, redirectURI)
}

func redirectQueryTo(t *testing.T, loc, redirect string) url.Values {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, redirect) {
		t.Fatalf("Location %q, want a redirect to the client at %s", loc, redirect)
	}
	return u.Query()
}

// REDIR-2, DEP-5: a redirect URI that is not exactly a registered one gets
// an HTML page, never a redirect.
func TestREDIR2_UnverifiedRedirectIsNeverUsed(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	for _, bad := range []string{"https://evil.example/cb", "http://127.0.0.1:33418/callbackX", "http://localhost:33418/callback"} {
		a := g.newAuth(c.ClientID)
		a.Redirect = bad
		resp, body := g.get(a.URL())
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: got %d, Location %q, Content-Type %q; want 400, an HTML page and no Location",
				bad, resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(string(body), "not one it registered") {
			t.Errorf("%s: the page does not say the address is %q:\n%s", bad, "not one it registered", body)
		}
	}
}

// SEC-120, REDIR-2: a client registered before redirect URIs had to be
// ASCII keeps its record, but /authorize refuses its look-alike URI with a
// page, never a redirect and never a consent page that names the host.
func TestSEC120_StoredNonASCIIRedirectRefused(t *testing.T) {
	g := newGateway(t)
	lookalike := "https://\u0430pple.com/cb" // a Cyrillic а
	c := &store.Client{ID: "old-client", Name: "Old", RedirectURIs: []string{lookalike}, TokenEndpointAuthMethod: "none",
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}, ApplicationType: "web", CreatedAt: g.clock.Now()}
	if err := g.store.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	a := g.newAuth(c.ID)
	a.Redirect = lookalike
	resp, body := g.get(a.URL())
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "no longer accepted") {
		t.Fatalf("/authorize with a stored non-ASCII redirect URI: %d, Location %q; want 400 and a page that says it is no longer accepted:\n%s",
			resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// An unknown client_id gets a page that tells the client to register again.
func TestUnknownClientPage(t *testing.T) {
	g := newGateway(t)
	a := g.newAuth("no-such-client")
	resp, body := g.get(a.URL())
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "register again") {
		t.Fatalf("got %d, Location %q:\n%s\nwant 400, no Location, a page telling the client to register again", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if !strings.Contains(g.logs.String(), "unknown client") {
		t.Fatalf("the log does not give the reason %q:\n%s", "unknown client", g.logs)
	}
}

// REDIR-4: a loopback redirect registered with one port works with another.
func TestREDIR4_LoopbackAnyPort(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/callback"}})
	a := g.newAuth(c.ClientID)
	a.Redirect = "http://127.0.0.1:49152/callback"
	code, _ := g.login(a)
	if resp, tok := g.exchange(a, code); resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token with another loopback port: %d %+v, want 200 with an access token", resp.StatusCode, tok)
	}
}

// GEN-5, PKCE-1, PKCE-2: no challenge, plain, or an implied plain are refused, back to the
// client with iss (ISS-1) and the state.
func TestPKCE2_S256Required(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	for name, mutate := range map[string]func(url.Values){
		"missing":      func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") },
		"plain":        func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"no method":    func(q url.Values) { q.Del("code_challenge_method") },
		"bad shape":    func(q url.Values) { q.Set("code_challenge", "short") },
		"bad response": func(q url.Values) { q.Set("response_type", "token") },
	} {
		t.Run(name, func(t *testing.T) {
			g := g.on(t)
			a := g.newAuth(c.ClientID)
			u, _ := url.Parse(a.URL())
			q := u.Query()
			mutate(q)
			u.RawQuery = q.Encode()
			resp, _ := g.get(u.String())
			if resp.StatusCode != 302 {
				t.Fatalf("got %d, want 302 back to the client with an error", resp.StatusCode)
			}
			rq := redirectQuery(t, resp.Header.Get("Location"))
			if rq.Get("error") == "" || rq.Get("iss") != g.url || rq.Get("state") != a.State {
				t.Errorf("redirect carries %v, want an error, iss %q and state %q", rq, g.url, a.State)
			}
		})
	}
}

// RES-1: an unknown resource is invalid_target; an omitted one defaults to
// the protected resource (Claude Code omits it).
func TestRES1_ResourceIndicator(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	a.Resource = "https://other.example/mcp"
	resp, _ := g.get(a.URL())
	if q := redirectQuery(t, resp.Header.Get("Location")); q.Get("error") != "invalid_target" {
		t.Fatalf("unknown resource: redirect carries %v, want error invalid_target", q)
	}
	a = g.newAuth(c.ClientID)
	a.Resource = ""
	code, _ := g.login(a)
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 {
		t.Fatalf("token without a resource: %d %+v, want 200", resp.StatusCode, tok)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("RES-3: token for the default resource refused: %d, want 200", r.StatusCode)
	}
	// RES-2: an uppercase host and a trailing slash name the same resource.
	a = g.newAuth(c.ClientID)
	a.Resource = strings.Replace(g.url, "http://", "HTTP://", 1) + "/mcp/"
	code, _ = g.login(a)
	a.Resource = g.url + "/mcp"
	if resp, _ := g.exchange(a, code); resp.StatusCode != 200 {
		t.Fatalf("RES-2: token for the resource spelt HTTP://…/mcp/: %d, want 200", resp.StatusCode)
	}
}

// REDIR-5: state comes back verbatim, whatever its length or characters.
func TestREDIR5_StateVerbatim(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	for _, st := range []string{"x", "abcdefghijklmnopqrstuvwx", strings.Repeat("é&=+ /", 200)} {
		t.Run(fmt.Sprintf("%d bytes", len(st)), func(t *testing.T) {
			g := g.on(t)
			a := g.newAuth(c.ClientID)
			a.State = st
			g.login(a) // asserts state and iss
		})
	}
}

// DEP-1..3: the consent page names the client, the redirect host and the
// scopes, refuses framing, and is CSRF-protected.
func TestDEP3_ConsentPage(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"client_name": "Acme <b>Agent</b>"})
	a := g.newAuth(c.ClientID)
	resp, body := g.get(a.URL())
	page := string(body)
	if resp.StatusCode != 200 {
		t.Fatalf("consent page: %d, want 200", resp.StatusCode)
	}
	for _, want := range []string{"Acme &lt;b&gt;Agent&lt;/b&gt;", "127.0.0.1:33418", "<code>mcp</code>", `name="csrf_token"`, `value="allow"`, `value="deny"`} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("DEP-3: X-Frame-Options %q, Content-Security-Policy %q; want DENY and frame-ancestors 'none'",
			resp.Header.Get("X-Frame-Options"), resp.Header.Get("Content-Security-Policy"))
	}
	// A form posted without this browser's CSRF cookie is refused.
	reqID := between(page, `name="request_id" value="`, `"`)
	csrf := between(page, `name="csrf_token" value="`, `"`)
	r, _ := g.postForm(g.url+"/consent", url.Values{"request_id": {reqID}, "csrf_token": {csrf}, "decision": {"allow"}})
	if r.StatusCode != 403 {
		t.Fatalf("DEP-3: consent posted without the browser's CSRF cookie: %d, want 403", r.StatusCode)
	}
	r, _ = g.postForm(g.url+"/consent", url.Values{"request_id": {reqID}, "csrf_token": {"forged"}, "decision": {"allow"}},
		"Cookie", "mcpgate_csrf="+strings.Repeat("a", 43))
	if r.StatusCode != 403 {
		t.Fatalf("DEP-3: forged CSRF token: %d, want 403", r.StatusCode)
	}
}

// DEP-1, DEP-6, DEP-7: no upstream state exists before consent: the login
// form cannot be completed with a made-up state.
func TestDEP6_NoUpstreamStateBeforeConsent(t *testing.T) {
	g := newGateway(t)
	b := browser.New(testUser, testPassword)
	_, err := b.Walk(context.Background(), g.url+"/login/local?state=made-up-state", redirectURI)
	var pe *browser.PageError
	if !errors.As(err, &pe) || !strings.Contains(pe.Error(), "expired or was already used") {
		t.Fatalf("a login with an unknown state: %v, want a page saying it expired or was already used", err)
	}
}

// toLoginForm takes a browser through consent to the login form and
// returns a function that posts that form (with the right password).
func toLoginForm(t *testing.T, g *gw) (submit func() *http.Response) {
	t.Helper()
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (*http.Response, string) {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(u string, form url.Values) *http.Response {
		resp, err := hc.PostForm(u, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	_, page := get(a.URL())
	resp := post(g.url+"/consent", url.Values{"request_id": {between(page, `name="request_id" value="`, `"`)},
		"csrf_token": {between(page, `name="csrf_token" value="`, `"`)}, "decision": {"allow"}, "connector": {"local"}})
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "/login/local?state=") {
		t.Fatalf("consent: %d, Location %q; want 302 to /login/local?state=…", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, login := get(g.url + resp.Header.Get("Location"))
	form := url.Values{"state": {between(login, `name="state" value="`, `"`)}, "csrf_token": {between(login, `name="csrf_token" value="`, `"`)},
		"username": {testUser}, "password": {testPassword}}
	return func() *http.Response { return post(g.url+"/login/local", form) }
}

// DEP-6: the upstream state is single-use: the login form of a finished
// flow cannot be submitted again.
func TestDEP6_UpstreamStateSingleUse(t *testing.T) {
	g := newGateway(t)
	submit := toLoginForm(t, g)
	if first := submit(); first.StatusCode != 302 || !strings.HasPrefix(first.Header.Get("Location"), redirectURI) {
		t.Fatalf("first login: %d, Location %q; want 302 to the client", first.StatusCode, first.Header.Get("Location"))
	}
	if second := submit(); second.StatusCode != 400 || second.Header.Get("Location") != "" {
		t.Fatalf("DEP-6: a used state was accepted again: %d, Location %q; want 400 and no redirect", second.StatusCode, second.Header.Get("Location"))
	}
}

// DEP-6: the upstream state expires after ten minutes.
func TestDEP6_UpstreamStateExpires(t *testing.T) {
	g := newGateway(t)
	submit := toLoginForm(t, g)
	g.clock.Advance(10*time.Minute + time.Second)
	if late := submit(); late.StatusCode != 400 || late.Header.Get("Location") != "" {
		t.Fatalf("DEP-6: an expired state was accepted: %d, Location %q; want 400 and no redirect", late.StatusCode, late.Header.Get("Location"))
	}
}

// Deny sends access_denied with state and iss.
func TestDEP_DenyGivesAccessDenied(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	b := browser.New(testUser, testPassword)
	b.Decision = "deny"
	_, state, iss, err := b.Authorize(context.Background(), a.URL(), a.Redirect)
	var ae *browser.AuthorizationError
	if !errors.As(err, &ae) || ae.Code != "access_denied" || state != a.State || iss != g.url {
		t.Fatalf("got %v, state %q, iss %q; want access_denied with state %q and iss %q", err, state, iss, a.State, g.url)
	}
}

// DEP-2: consent is remembered per user and client: the same browser gets
// its next code without a page; another client asks again.
func TestDEP2_ConsentRememberedPerClient(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	_, b := g.login(a)

	a2 := g.newAuth(c.ClientID)
	resp, err := b.Client.Get(a2.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), redirectURI) {
		t.Fatalf("remembered consent: %d, Location %q; want 302 to the client with no page", resp.StatusCode, resp.Header.Get("Location"))
	}
	other := g.register(nil)
	a3 := g.newAuth(other.ClientID)
	resp, err = b.Client.Get(a3.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("DEP-2: a new client must ask for consent: got %d, want 200 (the consent page)", resp.StatusCode)
	}
}

// Wrong password re-shows the form; the flow can still finish.
func TestLocalLoginWrongPassword(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	b := browser.New(testUser, "wrong")
	_, err := b.Walk(context.Background(), a.URL(), a.Redirect)
	if err == nil || !strings.Contains(err.Error(), "Wrong username or password") {
		t.Fatalf("got %v, want the login form again saying %q", err, "Wrong username or password")
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// SEC-149: a POSTed authorization request is bounded as one in a URL is (16 KiB
// of form): a larger one is refused with a page, before its state (here
// 1 MB) is stored for 10 minutes or its scope parsed. The same request
// with a small state is served. Fails before this change: net/http read
// forms of up to 10 MB, and the request went on to the login.
func TestAuthorizePostBounded(t *testing.T) {
	g := newGateway(t)
	a := g.newAuth(g.register(nil).ClientID)
	u, _ := url.Parse(a.URL())
	form := u.Query()
	if resp, _ := g.postForm(g.url+"/authorize", form); resp.StatusCode >= 400 {
		t.Fatalf("a POSTed authorization request: %d, want it served", resp.StatusCode)
	}
	form.Set("state", strings.Repeat("s", 1<<20))
	if resp, body := g.postForm(g.url+"/authorize", form); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a POSTed authorization request of 1 MB: %d, want 400\n%.300s", resp.StatusCode, body)
	}
}

// REDIR-3 (RFC 9700 §4.11.2): an error found at /authorize before the
// person saw any page goes to the client at once only where the gateway
// can trust its redirect URI: a pre-registered client, a loopback URI, or a
// client the person signed in here approved before. Any other client's
// error is a page whose link names where it goes, so that a self-registered
// client's link cannot use the gateway to send people to a site of its
// choice.
func TestREDIR3_UntrustedErrorIsAPage(t *testing.T) {
	const web, app = "https://app.example/cb", "com.example.app:/cb"
	g := newGateway(t, func(c *mcpgate.Config) {
		c.Clients = append(c.Clients, mcpgate.Client{ID: "corp-app", Name: "Corp App", RedirectURIs: []string{web}})
	})
	dcr := g.register(map[string]any{"client_name": "Web App", "redirect_uris": []string{web, app}, "application_type": "web"})
	bad := func(clientID, redirect string, change func(url.Values)) string {
		a := g.newAuth(clientID)
		a.Redirect = redirect
		u, _ := url.Parse(a.URL())
		q := u.Query()
		change(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	badType := func(q url.Values) { q.Set("response_type", "token") }
	silent := func(q url.Values) { q.Set("prompt", "none") }

	for _, tc := range []struct {
		name, redirect, host, code string
		change                     func(url.Values)
	}{
		{"unsupported response type", web, "app.example", "unsupported_response_type", badType},
		{"prompt none, not signed in", web, "app.example", "login_required", silent},
		{"private-use scheme", app, "com.example.app:", "unsupported_response_type", badType},
	} {
		resp, body := g.get(bad(dcr.ClientID, tc.redirect, tc.change))
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d, Location %q; want 400, a page and no redirect", tc.name, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		page := string(body)
		if !strings.Contains(page, "Go back to "+tc.host) || !strings.Contains(page, "“Web App”") {
			t.Errorf("%s: the page does not name the application and %q:\n%s", tc.name, tc.host, page)
		}
		// The link carries the error as the redirect would have.
		i := strings.Index(page, `id="back" href="`)
		if i < 0 {
			t.Errorf("%s: no link back on the page:\n%s", tc.name, page)
			continue
		}
		href := html.UnescapeString(page[i+len(`id="back" href="`):])
		href = href[:strings.IndexByte(href, '"')]
		if q := redirectQueryTo(t, href, tc.redirect); q.Get("error") != tc.code || q.Get("iss") != g.url || q.Get("state") == "" {
			t.Errorf("%s: the link carries %v, want error %s with state and iss", tc.name, q, tc.code)
		}
	}

	// Trusted: the administrator's client, and a loopback redirect URI.
	resp, _ := g.get(bad("corp-app", web, badType))
	if q := redirectQueryTo(t, resp.Header.Get("Location"), web); q.Get("error") != "unsupported_response_type" {
		t.Errorf("pre-registered client: %d %v, want a redirect with unsupported_response_type", resp.StatusCode, q)
	}
	native := g.register(nil)
	resp, _ = g.get(bad(native.ClientID, redirectURI, badType))
	if q := redirectQuery(t, resp.Header.Get("Location")); q.Get("error") != "unsupported_response_type" {
		t.Errorf("loopback redirect URI: %d %v, want a redirect with unsupported_response_type", resp.StatusCode, q)
	}

	// Trusted once the person approved the client in this browser.
	a := g.newAuth(dcr.ClientID)
	a.Redirect = web
	_, b := g.login(a)
	_, _, _, err := b.Authorize(context.Background(), bad(dcr.ClientID, web, badType), web)
	var ae *browser.AuthorizationError
	if !errors.As(err, &ae) || ae.Code != "unsupported_response_type" {
		t.Errorf("client the person approved: %v, want a redirect with unsupported_response_type", err)
	}
}

// SEC-180: the authorization requests one address stores are bounded. A
// state is at most 2048 bytes (refused with invalid_request, nothing
// stored); an address stores at most 120 requests a minute, at /authorize
// and /signin together, past which it gets temporarily_unavailable, 429,
// and nothing is stored. Before, one address sending GET /authorize with
// a state of 45 KB stored 36 MB a second, kept ten minutes.
func TestSEC180_StoredAuthorizationRequestsBounded(t *testing.T) {
	var stored atomic.Int64
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Store = &countingRequests{Store: c.Store, n: &stored}
	})
	client := g.register(nil).ClientID

	a := g.newAuth(client)
	a.State = strings.Repeat("s", 2049)
	resp, body := g.get(a.URL())
	if stored.Load() != 0 || !strings.Contains(string(body)+resp.Header.Get("Location"), "invalid_request") {
		t.Fatalf("a state of 2049 bytes: %d, %d stored; want invalid_request and nothing stored\n%.300s", resp.StatusCode, stored.Load(), body)
	}
	a.State = strings.Repeat("s", 2048)
	if resp, body := g.get(a.URL()); resp.StatusCode != 200 || stored.Load() != 1 {
		t.Fatalf("a state of 2048 bytes: %d, %d stored; want the consent page\n%.300s", resp.StatusCode, stored.Load(), body)
	}
	for i := 1; i < 120; i++ {
		if resp, _ := g.get(g.newAuth(client).URL()); resp.StatusCode != 200 {
			t.Fatalf("authorization request %d of the minute: %d, want the consent page", i+1, resp.StatusCode)
		}
	}
	resp, body = g.get(g.newAuth(client).URL())
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "error=temporarily_unavailable") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the 121st request of the minute: %d, Location %q, Retry-After %q; want temporarily_unavailable\n%.300s", resp.StatusCode, loc, resp.Header.Get("Retry-After"), body)
	}
	c := &http.Client{Jar: newJar(t), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, signin := page(t, c, "GET", g.url+"/signin?return=/account", nil)
	if resp, _ := page(t, c, "POST", g.url+"/signin", url.Values{"return": {"/account"}, "connector": {"local"},
		"csrf_token": {browser.InputValue(signin, "csrf_token")}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a page sign-in over the address's budget: %d, want 429", resp.StatusCode)
	}
	if n := stored.Load(); n != 120 {
		t.Fatalf("%d requests stored, want 120", n)
	}
	// The budget refills: a minute on, the address may store again.
	g.clock.Advance(time.Minute)
	if resp, _ := g.get(g.newAuth(client).URL()); resp.StatusCode != 200 {
		t.Fatalf("a minute later: %d, want the consent page", resp.StatusCode)
	}
}

// countingRequests counts the authorization requests stored.
type countingRequests struct {
	store.Store
	n *atomic.Int64
}

func (s *countingRequests) CreateAuthRequest(ctx context.Context, r *store.AuthRequest) error {
	s.n.Add(1)
	return s.Store.CreateAuthRequest(ctx, r)
}

// SEC-197: a form posted to /authorize from another site carries no
// SameSite=Lax cookie, and the CSRF cookie the page set replaced the
// browser's own, so that every form of the gateway it had open was
// refused. Such a post is sent to the same request as a GET, which
// carries the cookie, and sets none; a post that carries the cookie is
// answered as before. Fails before: 200 with a new mcpgate_csrf cookie.
func TestSEC197_CrossSitePostKeepsTheBrowsersCookie(t *testing.T) {
	g := newGateway(t)
	reg := g.register(nil)
	a := g.newAuth(reg.ClientID)
	u, err := url.Parse(a.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := g.postForm(g.url+"/authorize", u.Query(), "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Values("Set-Cookie") != nil {
		t.Fatalf("cross-site POST /authorize: %d, Set-Cookie %q; want 303 and no cookie", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || g.url+loc.Path != g.url+"/authorize" || loc.Query().Encode() != u.Query().Encode() {
		t.Errorf("Location %q, want %s/authorize with the posted parameters %s", resp.Header.Get("Location"), g.url, u.Query().Encode())
	}
	// The GET it leads to, with the browser's cookie: the consent page,
	// and the cookie kept.
	cookie := "mcpgate_csrf=" + strings.Repeat("c", 43)
	resp, body := g.get(resp.Header.Get("Location"), "Cookie", cookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Allow") || resp.Header.Values("Set-Cookie") != nil {
		t.Errorf("GET of the request posted: %d, Set-Cookie %q; want the consent page, the cookie kept", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	// A post that carries the cookie is a request like the GET (RFC 6749 §3.1).
	resp, body = g.postForm(g.url+"/authorize", u.Query(), "Cookie", cookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Allow") {
		t.Errorf("POST /authorize with the browser's cookie: %d, want the consent page", resp.StatusCode)
	}
}
