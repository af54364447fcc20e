package mcpgate_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// manyGroups is n distinct group names.
func manyGroups(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("team-%03d", i)
	}
	return out
}

// SEC-70: a user in more groups than MaxGroups is refused at login, never
// let in with some of them dropped (a tool_policy rule that denies a
// dropped group would no longer apply): a page names the count and the
// limit, the client gets access_denied, the log says why; a user at the
// limit gets in.
func TestSEC70_TooManyGroupsRefusedAtLogin(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.MaxGroups = 3 })
	ctx := context.Background()
	if err := g.local.SetUser(ctx, testUser, hashed(testPassword), "a", "b", "c", "d"); err != nil {
		t.Fatal(err)
	}
	if err := g.local.SetUser(ctx, "bob", hashed(bobPassword), "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	refused(t, g, browser.New(testUser, testPassword), g.newAuth(c.ClientID), testUser, "Local account", "in 4 groups", "at most 3")
	if logs := g.logs.String(); !strings.Contains(logs, "max_groups") || !strings.Contains(logs, "user=local:alice") || !strings.Contains(logs, "groups=4") {
		t.Errorf("the log does not say that local:alice was refused for 4 groups over max_groups:\n%s", logs)
	}
	a := g.newAuth(c.ClientID)
	code, _, _, err := browser.New("bob", bobPassword).Authorize(ctx, a.URL(), a.Redirect)
	if err != nil {
		t.Fatalf("bob, in 3 groups of at most 3: %v; want a code", err)
	}
	if resp, tok := g.exchange(a, code); resp.StatusCode != 200 {
		t.Fatalf("token: %d %+v, want 200", resp.StatusCode, tok)
	}
}

// SEC-70: the default limit is 100 groups, whichever connector gives them.
func TestSEC70_DefaultMaxGroups(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		lc := c.Connectors[0].(*local.Connector)
		c.Connectors = []upstream.Connector{groupsConnector{lc, map[string][]string{"local:alice": manyGroups(101), "local:bob": manyGroups(100)}}}
	})
	if err := g.local.SetUser(context.Background(), "bob", hashed(bobPassword)); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	refused(t, g, browser.New(testUser, testPassword), g.newAuth(c.ClientID), "in 101 groups", "at most 100")
	a := g.newAuth(c.ClientID)
	if _, _, _, err := browser.New("bob", bobPassword).Authorize(context.Background(), a.URL(), a.Redirect); err != nil {
		t.Fatalf("bob, in 100 groups: %v; want a code", err)
	}
}

// SEC-70: groups grown past MaxGroups at the provider end the grant at the
// refresh that re-reads them (RT-3): invalid_grant, and the log says why.
func TestSEC70_TooManyGroupsAtRefresh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, tok := newRecheckGateway(t, ctx, func(c *mcpgateConfig) { c.MaxGroups = 3 })
	g.alice.Groups = []string{"admins", "devs", "ops", "sre"}
	g.op.SetUser(t, g.alice)
	g.clock.Advance(2 * time.Hour)
	resp, tr := g.refresh(g.client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 400 || tr.Error != "invalid_grant" {
		t.Fatalf("refresh after joining a fourth group upstream: %d %+v, want 400 invalid_grant", resp.StatusCode, tr)
	}
	if logs := g.logs.String(); !strings.Contains(logs, "max_groups") || !strings.Contains(logs, "in 4 groups") {
		t.Errorf("the log does not say the refresh was refused for 4 groups over max_groups:\n%s", logs)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of the ended grant: %d, want 401", r.StatusCode)
	}
}

// SEC-71: a group name longer than 256 bytes, or holding a control
// character, is refused at login with a page, not dropped (which a deny
// rule on that group would not notice) nor carried into headers; a name
// of 256 bytes gets in.
func TestSEC71_GroupNamesBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, _ := newRecheckGateway(t, ctx, nil)
	long := strings.Repeat("g", 256)
	// SEC-192: 30 names of 200 bytes, each allowed, make an access
	// token over the 8 KiB the guard takes. Before, the login went
	// through, and every request with its tokens was refused.
	var many []string
	for i := range 30 {
		many = append(many, fmt.Sprintf("%03d%s", i, strings.Repeat("g", 197)))
	}
	for _, tc := range []struct {
		sub    string
		groups []string
		page   string
	}{
		{"carol", []string{"ops\x07"}, "control character"},
		{"dave", []string{"ops\tsre"}, "control character"},
		{"erin", []string{long + "x"}, "longer than 256 bytes"},
		{"gus", many, "this server accepts at most 4096"},
		{"fay", []string{long}, ""},
	} {
		g.op.SetUser(t, oidctest.User{Sub: tc.sub, Username: tc.sub, Groups: append([]string{"devs"}, tc.groups...)})
		a := g.newAuth(g.client.ClientID)
		b := browser.New("", "")
		last := recording(b)
		toProvider, err := b.Walk(ctx, a.URL(), g.op.Issuer()+"/")
		if err != nil {
			t.Fatalf("%s: authorize: %v", tc.sub, err)
		}
		done, err := b.Walk(ctx, g.op.Login(t, b.Client, toProvider.String(), tc.sub).String(), a.Redirect)
		if tc.page == "" {
			if err != nil || done.Query().Get("code") == "" {
				t.Fatalf("%s, a group of 256 bytes: %v %v; want a code", tc.sub, done, err)
			}
			continue
		}
		var pe *browser.PageError
		if !errors.As(err, &pe) || pe.Status != http.StatusForbidden || !strings.Contains(pe.Text, tc.page) {
			t.Fatalf("%s, groups %.80q: %v; want the 403 page saying %q", tc.sub, tc.groups, err, tc.page)
		}
		back, err := url.Parse(html.UnescapeString(between(last.body, `id="back" href="`, `"`)))
		if err != nil || back.Query().Get("error") != "access_denied" || back.Query().Has("code") {
			t.Fatalf("%s: the page's link back %q (%v); want access_denied, no code", tc.sub, back, err)
		}
		if logs := g.logs.String(); !strings.Contains(logs, "user=oidc:"+tc.sub) || !strings.Contains(logs, tc.page) {
			t.Errorf("%s: the log does not say why:\n%s", tc.sub, logs)
		}
	}
}
