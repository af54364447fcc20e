package mcpgate_test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/store"
)

// SEC-75: a browser logged in at the gateway through a rechecked provider
// names its user on the consent page, but who allows is known only once
// the provider has said who came back (RT-3). The consent of alice's
// browser session, allowed by a person who then signs in at the provider
// as bob, is bob's to give, not alice's: nothing is remembered for alice,
// and alice's own browser later gets the consent page for that client,
// not a code through a silent round trip for a client she never approved.
func TestSEC75_ConsentOfAReloginIsRecordedForWhoCameBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, _ := newRecheckGateway(t, ctx, nil)
	bob := oidctest.User{Sub: "bob", Email: "bob@corp.example", EmailVerified: true, Username: "bob", Password: "bob-pw"}
	g.op.SetUser(t, bob)

	// A browser with alice's gateway cookies and no provider session: a
	// shared computer where she signed out at the provider only.
	b := gatewayCookiesOnly(t, g)
	newClient := g.register(nil)
	a := g.newAuth(newClient.ClientID)
	resp, body := getWith(t, ctx, b, a.URL())
	if resp.StatusCode != 200 || !strings.Contains(body, "Signed in as <strong>oidc:alice</strong>") {
		t.Fatalf("authorize of a new client: %d %s; want the consent page naming alice", resp.StatusCode, body)
	}
	toProvider := postConsent(t, ctx, g.url, b, body, "allow")
	if !strings.HasPrefix(toProvider, g.op.Issuer()+"/") {
		t.Fatalf("allowed: sent to %q; want the provider", toProvider)
	}
	callback := g.op.Login(t, b, toProvider, "bob")
	resp, body = getWith(t, ctx, b, callback.String())
	if resp.StatusCode != 200 || !strings.Contains(body, "Signed in as <strong>bob</strong>") {
		t.Fatalf("bob back from the provider: %d %s; want bob's consent page", resp.StatusCode, body)
	}

	if c, err := g.st.GetConsent(ctx, "oidc:alice", newClient.ClientID, a.Resource); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice's consent to a client bob allowed: %+v %v; want none", c, err)
	}
	// alice's own browser (her sessions at the gateway and the provider).
	a = g.newAuth(newClient.ClientID)
	resp, body = getIn(t, ctx, g.browser, a.URL())
	if resp.StatusCode != 200 || !strings.Contains(body, `action="/consent"`) {
		t.Fatalf("alice authorizes the client bob allowed: %d %s %s; want her consent page", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// gatewayCookiesOnly is a client with the gateway cookies of g's browser
// and none of the provider's, which does not follow redirects.
func gatewayCookiesOnly(t *testing.T, g *recheckGateway) *http.Client {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var err error
	if c.Jar, err = cookiejar.New(nil); err != nil {
		t.Fatal(err)
	}
	gwURL, _ := url.Parse(g.url)
	var kept []*http.Cookie
	for _, ck := range g.browser.Client.Jar.Cookies(gwURL) {
		if strings.HasPrefix(ck.Name, "mcpgate_") {
			kept = append(kept, &http.Cookie{Name: ck.Name, Value: ck.Value, Path: "/"})
		}
	}
	if len(kept) != 2 {
		t.Fatalf("gateway cookies %v, want the session and CSRF cookies", kept)
	}
	c.Jar.SetCookies(gwURL, kept)
	return c
}

// getWith requests u with c, without following a redirect.
func getWith(t *testing.T, ctx context.Context, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, sb.String()
}

// postConsent posts the decision of the consent page page, from the
// gateway's origin, and returns where the gateway sends the browser.
func postConsent(t *testing.T, ctx context.Context, base string, c *http.Client, page, decision string) string {
	t.Helper()
	form := url.Values{"decision": {decision}}
	for _, name := range []string{"request_id", "csrf_token"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("consent page without %s: %s", name, page)
		}
		form.Set(name, html.UnescapeString(m[1]))
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("consent post: %d, want a redirect", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// SEC-75: nor is anything remembered for a person who allows a new client
// and then does not sign in at the provider (a wrong password there
// answers access_denied): the login failed, and so did the consent.
func TestSEC75_NoConsentFromAFailedRelogin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, _ := newRecheckGateway(t, ctx, nil)
	b := gatewayCookiesOnly(t, g)
	newClient := g.register(nil)
	a := g.newAuth(newClient.ClientID)
	resp, body := getWith(t, ctx, b, a.URL())
	if resp.StatusCode != 200 || !strings.Contains(body, `action="/consent"`) {
		t.Fatalf("authorize of a new client: %d %s; want the consent page", resp.StatusCode, body)
	}
	toProvider := postConsent(t, ctx, g.url, b, body, "allow")
	callback := g.op.LoginWithPassword(t, b, toProvider, "alice", "wrong")
	if resp, body = getWith(t, ctx, b, callback.String()); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("back from a failed login at the provider: %d %s; want the 403 page", resp.StatusCode, body)
	}
	if c, err := g.st.GetConsent(ctx, "oidc:alice", newClient.ClientID, a.Resource); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice's consent after her login at the provider failed: %+v %v; want none", c, err)
	}
}
