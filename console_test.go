package mcpgate_test

import (
	"context"
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

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// pageLogin signs name in at path through /signin, as a person who opens
// path without a session does, and returns a client with the browser's
// cookies that follows no redirect.
func (g *gw) pageLogin(name, password, path string) *http.Client {
	g.t.Helper()
	b := browser.New(name, password)
	loc, err := b.Walk(context.Background(), g.url+path, g.url+path)
	if err != nil {
		g.t.Fatalf("SEC-107: signing in at %s: %v", path, err)
	}
	if loc.String() != g.url+path {
		g.t.Fatalf("SEC-107: the login went back to %s, want %s", loc, g.url+path)
	}
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func newJar(t *testing.T) http.CookieJar {
	j, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// page sends one request with c; a form is posted.
func page(t *testing.T, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// grantIDOf returns the ID of the live grant that token's client holds
// for user.
func (g *gw) grantIDOf(user, clientID string) string {
	g.t.Helper()
	list, err := g.store.ListGrants(context.Background(), store.GrantQuery{UserID: "local:" + user})
	if err != nil {
		g.t.Fatal(err)
	}
	for _, gr := range list {
		if gr.ClientID == clientID && gr.RevokedAt.IsZero() {
			return gr.ID
		}
	}
	g.t.Fatalf("no live grant of %s for client %s", user, clientID)
	return ""
}

// framingRefused checks the headers every console page carries (SEC-108).
func framingRefused(t *testing.T, what string, h http.Header) {
	t.Helper()
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: X-Frame-Options %q, CSP %q, Cache-Control %q; want DENY, frame-ancestors 'none', no-store", what,
			h.Get("X-Frame-Options"), h.Get("Content-Security-Policy"), h.Get("Cache-Control"))
	}
}

// SEC-107: /account without a session sends the browser to sign in, and
// the login comes back to the page asked for; a return target that is
// not one of the gateway's own pages is never followed.
func TestSEC107_PageLoginReturnsToPage(t *testing.T) {
	g := newGateway(t)
	resp, _ := g.get(g.url + "/admin/users?x=1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?return=%2Fadmin%2Fusers%3Fx%3D1" {
		t.Fatalf("GET /admin/users without a session: %d, Location %q; want 303 to /signin with the page", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := g.pageLogin(testUser, testPassword, "/account")
	resp, body := page(t, c, "GET", g.url+"/account", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, testUser) {
		t.Fatalf("/account after signing in: %d, want 200 naming %s:\n%s", resp.StatusCode, testUser, body)
	}
	framingRefused(t, "/account", resp.Header)

	for _, bad := range []string{"https://evil.example/", "//evil.example/account", "/\\evil.example", "/login/local", "/account/../authorize",
		"/admin/%2e%2e/authorize", "javascript:alert(1)", "/account\r\nX: y"} {
		anon := &http.Client{CheckRedirect: g.client.CheckRedirect}
		resp, body := page(t, anon, "GET", g.url+"/signin?"+url.Values{"return": {bad}}.Encode(), nil)
		if resp.StatusCode != 200 || browser.InputValue(body, "return") != "/account" {
			t.Errorf("SEC-107: /signin?return=%q: %d, return field %q; want /account", bad, resp.StatusCode, browser.InputValue(body, "return"))
		}
		// A forged form with that target is refused before any login.
		resp, _ = page(t, anon, "POST", g.url+"/signin", url.Values{"return": {bad}, "connector": {"local"}, "csrf_token": {browser.InputValue(body, "csrf_token")}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("SEC-107: POST /signin with return=%q: %d, want 403", bad, resp.StatusCode)
		}
	}
	// Signed in already: /signin goes straight back, to a safe target only.
	resp, _ = page(t, c, "GET", g.url+"/signin?return=https://evil.example/", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Errorf("SEC-107: signed-in /signin?return=https://evil.example/: %d, Location %q; want 303 to /account", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// SEC-109: the account page lists the client that acts for the person,
// and one click revokes it: the client's access token is refused at
// once, its refresh token too.
func TestSEC109_AccountRevokeIsImmediate(t *testing.T) {
	g := newGateway(t)
	reg, _, tok := g.fullFlow()
	if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != 200 {
		t.Fatalf("the client's token before: %d, want 200", resp.StatusCode)
	}
	c := g.pageLogin(testUser, testPassword, "/account")
	resp, body := page(t, c, "GET", g.url+"/account", nil)
	id := g.grantIDOf(testUser, reg.ClientID)
	if resp.StatusCode != 200 || !strings.Contains(body, "Test Client") || !strings.Contains(body, `data-grant="`+id+`"`) ||
		!strings.Contains(body, ">registered<") || !strings.Contains(body, g.url+"/mcp") {
		t.Fatalf("/account: %d, want the grant's row naming Test Client, registered, the resource:\n%s", resp.StatusCode, body)
	}
	resp, _ = page(t, c, "POST", g.url+"/account/revoke", url.Values{"grant_id": {id}, "csrf_token": {browser.InputValue(body, "csrf_token")}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account?revoked=1" {
		t.Fatalf("revoke: %d, Location %q; want 303 to /account?revoked=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("SEC-109: the client's access token after the revocation: %d, want 401", resp.StatusCode)
	}
	if resp, _ := g.refresh(reg.ClientID, tok.RefreshToken, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("SEC-109: the client's refresh token after the revocation: %d, want 400", resp.StatusCode)
	}
	if _, body = page(t, c, "GET", g.url+"/account", nil); strings.Contains(body, `data-grant="`+id+`"`) {
		t.Errorf("the revoked grant is still listed:\n%s", body)
	}
}

// SEC-109: revoking on the account page also forgets the person's
// approval of the client, as the page says ("the application must ask
// you again"): the client's next authorization in a browser still signed
// in gets the consent page, not a code at once.
func TestSEC109_AccountRevokeAsksAgain(t *testing.T) {
	g := newGateway(t)
	reg, _, _ := g.fullFlow()
	c := g.pageLogin(testUser, testPassword, "/account")
	// Approved before and signed in: the client gets its code at once.
	resp, _ := page(t, c, "GET", g.newAuth(reg.ClientID).URL(), nil)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, redirectURI+"?code=") {
		t.Fatalf("authorization of an approved client: %d, Location %q; want a code at once", resp.StatusCode, loc)
	}
	_, body := page(t, c, "GET", g.url+"/account", nil)
	for _, gr := range mustListGrants(t, g.store, "local:"+testUser) {
		if gr.RevokedAt.IsZero() {
			resp, _ = page(t, c, "POST", g.url+"/account/revoke", url.Values{"grant_id": {gr.ID}, "csrf_token": {browser.InputValue(body, "csrf_token")}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("revoke: %d, want 303", resp.StatusCode)
			}
		}
	}
	resp, body = page(t, c, "GET", g.newAuth(reg.ClientID).URL(), nil)
	if resp.StatusCode != http.StatusOK || browser.InputValue(body, "request_id") == "" {
		t.Errorf("SEC-109: authorization after the revocation: %d, Location %q; want the consent page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// SEC-155: revoking an application on the account page ends all of its
// access: a client the person approved holds a grant for every code it
// redeemed (a signed-in browser gets codes without a page), and each one
// ends, not only the row clicked. Another application's grant stays.
func TestSEC155_AccountRevokeEndsEveryGrantOfTheApplication(t *testing.T) {
	g := newGateway(t)
	reg, _, tok1 := g.fullFlow()
	_, _, other := g.fullFlow()
	c := g.pageLogin(testUser, testPassword, "/account")
	a := g.newAuth(reg.ClientID)
	resp, _ := page(t, c, "GET", a.URL(), nil) // approved before: a code at once
	loc, _ := url.Parse(resp.Header.Get("Location"))
	resp2, tok2 := g.exchange(a, loc.Query().Get("code"))
	if resp2.StatusCode != 200 {
		t.Fatalf("the second grant: %d %+v", resp2.StatusCode, tok2)
	}
	_, body := page(t, c, "GET", g.url+"/account", nil)
	resp, _ = page(t, c, "POST", g.url+"/account/revoke", url.Values{"grant_id": {g.grantIDOf(testUser, reg.ClientID)}, "csrf_token": {browser.InputValue(body, "csrf_token")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d, want 303", resp.StatusCode)
	}
	for i, rt := range []string{tok1.RefreshToken, tok2.RefreshToken} {
		if resp, _ := g.refresh(reg.ClientID, rt, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("grant %d of the revoked application refreshes: %d, want 400", i+1, resp.StatusCode)
		}
	}
	if resp, _ := g.mcpInitialize(g.url, tok2.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the second grant's access token after the revocation: %d, want 401", resp.StatusCode)
	}
	if resp, _ := g.mcpInitialize(g.url, other.AccessToken); resp.StatusCode != 200 {
		t.Errorf("another application's access token: %d, want 200", resp.StatusCode)
	}
}

func mustListGrants(t *testing.T, s store.Store, userID string) []*store.Grant {
	t.Helper()
	list, err := s.ListGrants(context.Background(), store.GrantQuery{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// SEC-110: a person revokes only their own grants: another user's grant
// id, posted with a valid form token, is answered 404 and stays live.
func TestSEC110_OtherUsersGrantRefused(t *testing.T) {
	g := newGateway(t)
	if err := g.local.SetUser(context.Background(), "bob", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	reg := g.register(nil)
	a := g.newAuth(reg.ClientID)
	code, _, _, err := browser.New("bob", testPassword).Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	_, bobTok := g.exchange(a, code)
	bobGrant := g.grantIDOf("bob", reg.ClientID)

	c := g.pageLogin(testUser, testPassword, "/account")
	_, body := page(t, c, "GET", g.url+"/account", nil)
	if strings.Contains(body, bobGrant) {
		t.Fatalf("SEC-110: alice's account page shows bob's grant:\n%s", body)
	}
	for _, id := range []string{bobGrant, "no-such-grant"} {
		resp, _ := page(t, c, "POST", g.url+"/account/revoke", url.Values{"grant_id": {id}, "csrf_token": {browser.InputValue(body, "csrf_token")}})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("SEC-110: alice revoking grant %q: %d, want 404", id, resp.StatusCode)
		}
	}
	gr, err := g.store.GetGrant(context.Background(), bobGrant)
	if err != nil || !gr.RevokedAt.IsZero() {
		t.Fatalf("SEC-110: bob's grant after alice's attempt: %v, revoked at %v; want live", err, gr.RevokedAt)
	}
	if resp, _ := g.mcpInitialize(g.url, bobTok.AccessToken); resp.StatusCode != 200 {
		t.Errorf("SEC-110: bob's token after alice's attempt: %d, want 200", resp.StatusCode)
	}
}

// SEC-108: every change is a POST with the page's form token: none, a
// wrong one, or one of another session is refused with 403 and nothing
// changes; a GET changes nothing.
func TestSEC108_ConsolePostsNeedFormToken(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	if err := g.local.SetUser(ctx, "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	reg, _, tok := g.fullFlow()
	id := g.grantIDOf(testUser, reg.ClientID)
	alice := g.pageLogin(testUser, testPassword, "/account")
	admin := g.pageLogin("admin", testPassword, "/admin/grants")
	_, adminPage := page(t, admin, "GET", g.url+"/admin/grants", nil)
	otherToken := browser.InputValue(adminPage, "csrf_token") // another browser's, another session's
	for _, tc := range []struct {
		c    *http.Client
		path string
		form url.Values
	}{
		{alice, "/account/revoke", url.Values{"grant_id": {id}}},
		{alice, "/account/revoke", url.Values{"grant_id": {id}, "csrf_token": {"wrong"}}},
		{alice, "/account/revoke", url.Values{"grant_id": {id}, "csrf_token": {otherToken}}},
		{admin, "/admin/grants/revoke", url.Values{"id": {id}}},
		{admin, "/admin/grants/revoke", url.Values{"id": {id}, "csrf_token": {"wrong"}}},
		{admin, "/admin/users/disable", url.Values{"id": {testUser}, "csrf_token": {"wrong"}}},
		{admin, "/admin/clients/remove", url.Values{"id": {reg.ClientID}}},
		{alice, "/signout", url.Values{}},
	} {
		resp, _ := page(t, tc.c, "POST", g.url+tc.path, tc.form)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("SEC-108: POST %s %v: %d, want 403", tc.path, tc.form, resp.StatusCode)
		}
	}
	for _, path := range []string{"/account/revoke", "/admin/grants/revoke"} {
		if resp, _ := page(t, admin, "GET", g.url+path+"?id="+id+"&grant_id="+id, nil); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", path, resp.StatusCode)
		}
	}
	if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != 200 {
		t.Errorf("SEC-108: the token after refused posts: %d, want 200", resp.StatusCode)
	}
	if u, err := g.store.GetLocalUser(ctx, testUser); err != nil || !u.DisabledAt.IsZero() {
		t.Errorf("SEC-108: alice after a refused disable: %v %+v", err, u)
	}
	if _, err := g.store.GetClient(ctx, reg.ClientID); err != nil {
		t.Errorf("SEC-108: the client after a refused remove: %v", err)
	}
	// Signing out with the page's token ends the browser's session, in
	// the store too: a copy of its cookie logs no one in.
	_, body := page(t, alice, "GET", g.url+"/account", nil)
	u, _ := url.Parse(g.url)
	copied := &http.Client{Jar: newJar(t), CheckRedirect: g.client.CheckRedirect}
	copied.Jar.SetCookies(u, alice.Jar.Cookies(u))
	if resp, _ := page(t, alice, "POST", g.url+"/signout", url.Values{"csrf_token": {browser.InputValue(body, "csrf_token")}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d, want 303", resp.StatusCode)
	}
	if resp, _ := page(t, alice, "GET", g.url+"/account", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("/account after signing out: %d, want 303 to sign in", resp.StatusCode)
	}
	if resp, _ := page(t, copied, "GET", g.url+"/account", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("/account with a copy of the cookie after signing out: %d, want 303 to sign in", resp.StatusCode)
	}
}

// SEC-111: the admin console is for the local account admin and members
// of admin_groups; anyone else signed in gets 403. An administrator sees
// users, clients, grants and the recent tool calls, and revokes a grant,
// whose access token is refused at once.
func TestSEC111_AdminConsole(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.AdminGroups = []string{"ops"} })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.local.SetUser(ctx, "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	if err := g.local.SetUser(ctx, "carol", hashed(testPassword), "ops"); err != nil {
		t.Fatal(err)
	}
	reg, _, tok := g.fullFlow()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: bearer(tok.AccessToken)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}}); err != nil {
		t.Fatal(err)
	}
	// A name whose right-to-left override would make its row read as
	// another tool's ("echo" spelled backwards after "exe."): shown with
	// the override replaced, never as it came (SEC-116).
	_, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "exe.\u202eohce"})

	alice := g.pageLogin(testUser, testPassword, "/admin")
	for _, path := range []string{"/admin", "/admin/users", "/admin/grants", "/admin/calls", "/admin/clients"} {
		resp, _ := page(t, alice, "GET", g.url+path, nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("SEC-111: alice at %s: %d, want 403", path, resp.StatusCode)
		}
		framingRefused(t, "403 at "+path, resp.Header)
	}
	if resp, _ := page(t, g.pageLogin("carol", testPassword, "/admin"), "GET", g.url+"/admin", nil); resp.StatusCode != 200 {
		t.Errorf("SEC-111: carol of admin group ops at /admin: %d, want 200", resp.StatusCode)
	}

	admin := g.pageLogin("admin", testPassword, "/admin")
	id := g.grantIDOf(testUser, reg.ClientID)
	for path, want := range map[string][]string{
		"/admin/users":   {`data-user="alice"`, `data-user="carol"`, `data-user="local:alice"`},
		"/admin/clients": {`data-client="` + reg.ClientID + `"`, "Test Client"},
		"/admin/grants":  {`data-grant="` + id + `"`, "local:alice"},
		"/admin/calls":   {"<td>echo</td>", "<td>ok</td>", "local:alice", reg.ClientID, "<td>exe.\ufffdohce</td>"},
	} {
		resp, body := page(t, admin, "GET", g.url+path, nil)
		framingRefused(t, path, resp.Header)
		for _, w := range want {
			if resp.StatusCode != 200 || !strings.Contains(body, w) {
				t.Errorf("SEC-111: the admin at %s: %d, want %q in:\n%s", path, resp.StatusCode, w, body)
			}
		}
	}
	_, body := page(t, admin, "GET", g.url+"/admin/grants", nil)
	resp, _ := page(t, admin, "POST", g.url+"/admin/grants/revoke", url.Values{"id": {id}, "csrf_token": {browser.InputValue(body, "csrf_token")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the admin's revoke: %d, want 303", resp.StatusCode)
	}
	if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("SEC-109: the token after the admin's revoke: %d, want 401", resp.StatusCode)
	}
}

// README's example resource at /admin/mcp stays a resource: the console's
// routes are exact paths, the resource's is more specific than any of
// them.
func TestConsoleKeepsAdminMCPResource(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.MCPPath = "/admin/mcp" })
	reg := g.register(nil)
	a := g.newAuth(reg.ClientID)
	a.Resource = g.url + "/admin/mcp"
	code, _ := g.login(a)
	_, tok := g.exchange(a, code)
	if resp, body := g.mcpInitialize(g.url+"/admin", tok.AccessToken); resp.StatusCode != 200 || !strings.Contains(string(body), "protocolVersion") {
		t.Fatalf("initialize at /admin/mcp: %d %s, want the MCP server's answer", resp.StatusCode, body)
	}
	if resp, _ := g.mcpInitialize(g.url+"/admin", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/admin/mcp without a token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := g.get(g.url + "/admin"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("/admin beside the resource: %d, want 303 to sign in", resp.StatusCode)
	}
}

// A page mounted with MountAdminPage is behind the console's check: sent
// to sign in without a session, 403 for a non-administrator, listed in
// the navigation, and its posts refused without the form token
// AdminFormToken gives it (SEC-108, SEC-111). A path that is not
// /admin/NAME, or is taken, is refused.
func TestMountAdminPage(t *testing.T) {
	g := newGateway(t)
	if err := g.local.SetUser(context.Background(), "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	var posted atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posted.Add(1)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<form method="post"><input type="hidden" name="csrf_token" value="`+html.EscapeString(mcpgate.AdminFormToken(r))+`"></form>`+r.URL.Path)
	})
	if err := g.gw.MountAdminPage("/admin/extra", "Extra", h); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"/admin/extra", "/admin/flows", "/admin/users", "/admin", "/flows", "/admin/Flows", "/admin/a/b"} {
		if err := g.gw.MountAdminPage(bad, "X", h); err == nil {
			t.Errorf("MountAdminPage(%q): no error", bad)
		}
	}
	if resp, _ := g.get(g.url + "/admin/extra?client=x"); resp.StatusCode != http.StatusSeeOther ||
		resp.Header.Get("Location") != "/signin?return=%2Fadmin%2Fextra%3Fclient%3Dx" {
		t.Fatalf("the mounted page without a session: %d %q, want 303 to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := page(t, g.pageLogin(testUser, testPassword, "/account"), "GET", g.url+"/admin/extra", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("SEC-111: alice at the mounted page: %d, want 403", resp.StatusCode)
	}
	admin := g.pageLogin("admin", testPassword, "/admin/extra")
	resp, body := page(t, admin, "GET", g.url+"/admin/extra/one", nil)
	if resp.StatusCode != 200 || !strings.HasSuffix(body, "/admin/extra/one") {
		t.Fatalf("the admin at /admin/extra/one: %d %s", resp.StatusCode, body)
	}
	framingRefused(t, "the mounted page", resp.Header)
	if _, nav := page(t, admin, "GET", g.url+"/admin", nil); !strings.Contains(nav, `<a href="/admin/extra">Extra</a>`) {
		t.Errorf("the console's navigation does not list the mounted page:\n%s", nav)
	}
	for _, token := range []string{"", "wrong"} {
		if resp, _ := page(t, admin, "POST", g.url+"/admin/extra", url.Values{"csrf_token": {token}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("SEC-108: a post to the mounted page with token %q: %d, want 403", token, resp.StatusCode)
		}
	}
	// With the page's token, but posted from a page of another origin.
	req, _ := http.NewRequest("POST", g.url+"/admin/extra", strings.NewReader(url.Values{"csrf_token": {browser.InputValue(body, "csrf_token")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://127.0.0.1:1")
	resp, err := admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("SEC-5: a post to the mounted page from another origin: %d, want 403", resp.StatusCode)
	}
	if n := posted.Load(); n != 0 {
		t.Fatalf("SEC-108: %d refused posts reached the mounted handler", n)
	}
	if resp, _ := page(t, admin, "POST", g.url+"/admin/extra", url.Values{"csrf_token": {browser.InputValue(body, "csrf_token")}}); resp.StatusCode != 200 || posted.Load() != 1 {
		t.Errorf("a post with the page's token: %d, %d posts reached the handler; want 200 and 1", resp.StatusCode, posted.Load())
	}
}

// The grants page shows the newest 500 grants and says how many there
// are: a store with many grants makes no page without end.
func TestAdminGrantsPageBounded(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	if err := g.local.SetUser(ctx, "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	for i := range 501 {
		gr := &store.Grant{ID: fmt.Sprintf("grant-%03d", i), ClientID: "c", User: identity.User{ID: "local:bob"},
			Resource: g.url + "/mcp", CreatedAt: g.clock.Now().Add(time.Duration(i) * time.Second)}
		if err := g.store.CreateGrant(ctx, gr, nil); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := page(t, g.pageLogin("admin", testPassword, "/admin/grants"), "GET", g.url+"/admin/grants", nil)
	if resp.StatusCode != 200 || strings.Count(body, "data-grant=") != 500 || !strings.Contains(body, "The newest 500 grants") ||
		!strings.Contains(body, `data-grant="grant-500"`) || strings.Contains(body, `data-grant="grant-000"`) {
		t.Fatalf("/admin/grants with 501 grants: %d, %d rows; want the newest 500 and the total", resp.StatusCode, strings.Count(body, "data-grant="))
	}
}

// The flow debugger's page is part of the admin console (SEC-111,
// SEC-117): /admin/flows shows an administrator a failed attempt with its
// reason, and is in the console's navigation; anyone else gets 403; and a
// resource cannot take its path.
func TestAdminConsoleShowsFlows(t *testing.T) {
	g := newGateway(t, withFlows)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.local.SetUser(ctx, "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	a.Redirect = "http://127.0.0.1:33419/cb"
	if resp, _ := g.get(a.URL()); resp.StatusCode != 400 {
		t.Fatalf("/authorize: %d, want 400", resp.StatusCode)
	}
	g.flowEvent("authorize", "invalid_redirect_uri")

	alice := g.pageLogin(testUser, testPassword, "/admin")
	if resp, _ := page(t, alice, "GET", g.url+"/admin/flows", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("SEC-111: alice at /admin/flows: %d, want 403", resp.StatusCode)
	}
	admin := g.pageLogin("admin", testPassword, "/admin")
	if _, body := page(t, admin, "GET", g.url+"/admin", nil); !strings.Contains(body, `href="/admin/flows"`) || !strings.Contains(body, "saw last, and Flows.") {
		t.Errorf("the console's navigation or its first page lacks the flows page:\n%s", body)
	}
	resp, body := page(t, admin, "GET", g.url+"/admin/flows?client="+url.QueryEscape(c.ClientID), nil)
	framingRefused(t, "/admin/flows", resp.Header)
	if want := "redirect_uri http://127.0.0.1:33419/cb is not registered for this client"; resp.StatusCode != 200 || !strings.Contains(body, want) || !strings.Contains(body, `<a href="/admin">Admin console</a>`) {
		t.Errorf("the admin at /admin/flows: %d, want %q in:\n%s", resp.StatusCode, want, body)
	}

	cfg := withStore(mcpgate.Config{Resources: []mcpgate.Resource{{Path: "/admin/flows"}}})
	if _, err := mcpgate.New(ctx, cfg); err == nil || !strings.Contains(err.Error(), "/admin/flows") {
		t.Errorf("a resource at /admin/flows: %v, want an error naming the path", err)
	}
}

// The clients page shows the newest 500 registered clients and says how
// many there are: anyone may register one at /register, and a store with
// many makes no page without end.
func TestAdminClientsPageBounded(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	if err := g.local.SetUser(ctx, "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	for i := range 501 {
		c := &store.Client{ID: fmt.Sprintf("client-%03d", i), Name: "spam", RedirectURIs: []string{redirectURI},
			TokenEndpointAuthMethod: "none", CreatedAt: g.clock.Now().Add(time.Duration(i) * time.Second)}
		if err := g.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := page(t, g.pageLogin("admin", testPassword, "/admin/clients"), "GET", g.url+"/admin/clients", nil)
	if resp.StatusCode != 200 || strings.Count(body, "data-client=") != 500 || !strings.Contains(body, "The newest 500 registered clients") ||
		!strings.Contains(body, `data-client="client-500"`) || strings.Contains(body, `data-client="client-000"`) {
		t.Fatalf("/admin/clients with 501 clients: %d, %d rows; want the newest 500 and the total", resp.StatusCode, strings.Count(body, "data-client="))
	}
}

// An administrator's revocation (the console's, as the CLI's) also
// forgets the person's approval of that client: "revoke that laptop"
// must not let the client back in silently from a browser still signed
// in (SEC-109, SEC-95).
func TestAdminRevokeAsksAgain(t *testing.T) {
	g := newGateway(t)
	if err := g.local.SetUser(context.Background(), "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	reg, _, _ := g.fullFlow()
	alice := g.pageLogin(testUser, testPassword, "/account")
	admin := g.pageLogin("admin", testPassword, "/admin/grants")
	_, body := page(t, admin, "GET", g.url+"/admin/grants", nil)
	resp, _ := page(t, admin, "POST", g.url+"/admin/grants/revoke", url.Values{"id": {g.grantIDOf(testUser, reg.ClientID)}, "csrf_token": {browser.InputValue(body, "csrf_token")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the admin's revoke: %d, want 303", resp.StatusCode)
	}
	resp, body = page(t, alice, "GET", g.newAuth(reg.ClientID).URL(), nil)
	if resp.StatusCode != http.StatusOK || browser.InputValue(body, "request_id") == "" {
		t.Errorf("authorization after the admin's revocation: %d, Location %q; want the consent page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// SEC-155: a code issued before the person revoked the application, and
// redeemed after, issues nothing: the approval it was issued under is
// gone.
func TestSEC155_CodeIssuedBeforeTheRevokeIssuesNothing(t *testing.T) {
	g := newGateway(t)
	reg, _, _ := g.fullFlow()
	c := g.pageLogin(testUser, testPassword, "/account")
	a := g.newAuth(reg.ClientID)
	resp, _ := page(t, c, "GET", a.URL(), nil) // approved before: a code at once
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code at once: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := page(t, c, "GET", g.url+"/account", nil)
	if resp, _ := page(t, c, "POST", g.url+"/account/revoke", url.Values{"grant_id": {g.grantIDOf(testUser, reg.ClientID)}, "csrf_token": {browser.InputValue(body, "csrf_token")}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d, want 303", resp.StatusCode)
	}
	if resp, tok := g.exchange(a, code); resp.StatusCode != http.StatusBadRequest || tok.Error != "invalid_grant" {
		t.Errorf("the code issued before the revoke: %d %+v, want 400 invalid_grant", resp.StatusCode, tok)
	}
}

// SEC-116: a provider's subject is the user ID's text, which a provider
// may fill with a right-to-left override or an invisible character; the
// users and grants pages show it with those replaced, as the recent calls
// do, so that no row reads as another person's. Fails before: the ID
// column showed the override as it came.
func TestSEC116_AdminPagesShowUserIDsPrintable(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	if err := g.local.SetUser(ctx, "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	gr := &store.Grant{ID: "grant-bidi", ClientID: "c", User: identity.User{ID: "oidc:mallory\u202egnp.exe\u200b"},
		Resource: g.url + "/mcp", CreatedAt: g.clock.Now()}
	if err := g.store.CreateGrant(ctx, gr, nil); err != nil {
		t.Fatal(err)
	}
	admin := g.pageLogin("admin", testPassword, "/admin")
	for _, path := range []string{"/admin/users", "/admin/grants"} {
		resp, body := page(t, admin, "GET", g.url+path, nil)
		if resp.StatusCode != 200 || strings.ContainsAny(body, "\u202e\u200b") || !strings.Contains(body, "oidc:mallory\ufffdgnp.exe\ufffd") {
			t.Errorf("%s: %d, want the user ID with its override and zero-width space replaced by U+FFFD", path, resp.StatusCode)
		}
	}
}

// listCounter counts the clients and grants the store's lists return.
type listCounter struct {
	store.Store
	rows atomic.Int64
}

func (s *listCounter) ListClients(ctx context.Context, limit int) ([]*store.Client, error) {
	l, err := s.Store.ListClients(ctx, limit)
	s.rows.Add(int64(len(l)))
	return l, err
}

func (s *listCounter) ListGrants(ctx context.Context, q store.GrantQuery) ([]*store.Grant, error) {
	l, err := s.Store.ListGrants(ctx, q)
	s.rows.Add(int64(len(l)))
	return l, err
}

// The console's pages read from the store at most the rows they show and
// one more, to say there are more: anyone may register clients (one
// registration stores up to 45 KB), and a person makes a grant with
// every sign-in, so a page that read every row would hold as much memory
// as they stored, at every view.
func TestConsolePagesReadBoundedRows(t *testing.T) {
	lists := &listCounter{}
	g := newGateway(t, func(c *mcpgateConfig) { lists.Store = c.Store; c.Store = lists })
	ctx := context.Background()
	if err := g.local.SetUser(ctx, "admin", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	const stored = 5200
	for i := range stored {
		c := &store.Client{ID: fmt.Sprintf("client-%04d", i), Name: "spam", RedirectURIs: []string{redirectURI},
			TokenEndpointAuthMethod: "none", CreatedAt: g.clock.Now().Add(time.Duration(i) * time.Second)}
		gr := &store.Grant{ID: fmt.Sprintf("grant-%04d", i), ClientID: c.ID, User: identity.User{ID: "local:admin"},
			Resource: g.url + "/mcp", CreatedAt: c.CreatedAt}
		if err := g.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := g.store.CreateGrant(ctx, gr, nil); err != nil {
			t.Fatal(err)
		}
	}
	admin := g.pageLogin("admin", testPassword, "/admin")
	for path, bound := range map[string]int64{"/admin/clients": 501, "/admin/grants": 501, "/admin/users": 5001, "/account": 501} {
		lists.rows.Store(0)
		resp, body := page(t, admin, "GET", g.url+path, nil)
		if resp.StatusCode != 200 || !strings.Contains(body, "newest") {
			t.Errorf("%s: %d, want 200 and a word that it shows the newest", path, resp.StatusCode)
		}
		if n := lists.rows.Load(); n > bound {
			t.Errorf("%s read %d rows of the store's %d, want at most %d", path, n, stored, bound)
		}
	}
}

// SEC-217, SEC-109: the account page reads a person's newest live grants,
// so that revoked ones, kept until housekeeping, cannot push a live one
// off the page a person revokes access on. Fails with the page reading
// the newest 501 grants of any state: it said no application could act
// for the person.
func TestAccountPageShowsOlderLiveGrant(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	user := identity.User{ID: "local:" + testUser, Username: testUser}
	live := &store.Grant{ID: "old-live", ClientID: "client-b", User: user, Resource: g.url + "/mcp", CreatedAt: g.clock.Now().Add(-time.Hour)}
	if err := g.store.CreateGrant(ctx, live, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 501 {
		gr := &store.Grant{ID: fmt.Sprintf("revoked-%03d", i), ClientID: "client-a", User: user, Resource: g.url + "/mcp",
			CreatedAt: g.clock.Now().Add(time.Duration(i) * time.Second), RevokedAt: g.clock.Now()}
		if err := g.store.CreateGrant(ctx, gr, nil); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := page(t, g.pageLogin(testUser, testPassword, "/account"), "GET", g.url+"/account", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `data-grant="old-live"`) {
		t.Errorf("/account with one live grant older than 501 revoked ones: %d, the live one shown: %v; want it shown", resp.StatusCode, strings.Contains(body, `data-grant="old-live"`))
	}
}
