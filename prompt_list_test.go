package mcpgate_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

// SEC-78: prompt is a space-separated list (OpenID Connect Core
// §3.1.2.1). A client that asks for consent among other values gets the
// consent page even from a browser whose user approved it before (DEP-2),
// and none with another value is an invalid_request, never taken for a
// prompt that allows pages: a browser logged in through a rechecked
// provider is not sent to the provider's pages for it.
func TestSEC78_PromptIsAList(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g := newGateway(t)
	c := g.register(nil)
	_, b := g.login(g.newAuth(c.ClientID)) // consent remembered, browser logged in
	for _, prompt := range []string{"consent", "login consent", "consent select_account"} {
		a := g.newAuth(c.ClientID)
		resp, body := getWith(t, ctx, b.Client, a.URL()+"&prompt="+url.QueryEscape(prompt))
		if resp.StatusCode != 200 || !strings.Contains(body, `action="/consent"`) {
			t.Errorf("prompt=%q from a browser that approved the client: %d %s; want the consent page", prompt, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	rg, _ := newRecheckGateway(t, ctx, nil)
	for _, prompt := range []string{"none login", "login none", "none consent"} {
		a := rg.newAuth(rg.client.ClientID)
		resp, _ := getWith(t, ctx, rg.browser.Client, a.URL()+"&prompt="+url.QueryEscape(prompt))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || !strings.HasPrefix(loc.String(), a.Redirect) || loc.Query().Get("error") != "invalid_request" ||
			loc.Query().Get("state") != a.State {
			t.Errorf("prompt=%q: %d to %s; want invalid_request at the client's redirect URI, with state", prompt, resp.StatusCode, loc)
		}
	}
}
