package mcpgate_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate"
)

// SEC-134: a person's approval of a client is for the resource the
// consent page named. Approved for /notes, the client gets no silent code
// for /ops/mcp (prompt=none: consent_required) and, without prompt, the
// consent page naming /ops/mcp; asked for /notes again, it gets its code
// at once. Fails before this change: the approval of /notes gave a code
// for /ops/mcp with no page.
func TestSEC134_ConsentIsPerResource(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/notes"}, {Path: "/ops/mcp"}}
	})
	c := g.register(nil)
	notes := g.newAuth(c.ClientID)
	notes.Resource = g.url + "/notes"
	_, b := g.login(notes) // the person approves "call /notes"
	noRedirect := *b.Client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	ops := g.newAuth(c.ClientID)
	ops.Resource = g.url + "/ops/mcp"
	resp, err := noRedirect.Get(ops.URL() + "&prompt=none")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") != "" || loc.Query().Get("error") != "consent_required" {
		t.Fatalf("SEC-134: prompt=none for /ops/mcp after approving /notes: %d %s, want a redirect with consent_required and no code", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noRedirect.Get(ops.URL())
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b2)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "/ops/mcp") {
		t.Fatalf("SEC-134: /authorize for /ops/mcp: %d, want the consent page naming it:\n%s", resp.StatusCode, body)
	}

	again := g.newAuth(c.ClientID)
	again.Resource = g.url + "/notes"
	resp, err = noRedirect.Get(again.URL() + "&prompt=none")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("DEP-2: /notes again, approved before: %d %s, want a code at once", resp.StatusCode, resp.Header.Get("Location"))
	}
}
