package mcpgate_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store"
)

const day = 24 * time.Hour

// authorizePage opens /authorize for clientID without a browser session:
// the consent page (200) for a known client, an error page otherwise.
func (g *gw) authorizePage(clientID string) (int, string) {
	g.t.Helper()
	resp, body := g.get(g.newAuth(clientID).URL())
	return resp.StatusCode, string(body)
}

// SEC-14: a registered client unused for UnusedClientExpiry (default 90
// days) that holds no live grant is deleted by housekeeping: it is then an
// unknown application at /authorize and invalid_client at /token. A
// client with a live refresh token survives and refreshes; a use resets
// the clock; pre-registered clients are never deleted.
func TestSEC14_UnusedClientsExpire(t *testing.T) {
	g := newGateway(t, func(c *mcpgate.Config) {
		c.RefreshTokenTTL = 365 * day
		c.Clients = append(c.Clients, mcpgate.Client{ID: "static-app", Name: "Static", RedirectURIs: []string{redirectURI}})
	})
	ctx := context.Background()
	idle := g.register(nil)
	live, _, liveTok := g.fullFlow()
	used := g.register(nil)

	g.clock.Advance(60 * day)
	ua := g.newAuth(used.ClientID)
	code, _ := g.login(ua)
	if resp, tok := g.exchange(ua, code); resp.StatusCode != 200 {
		t.Fatalf("flow of the client used on day 60: %d %+v", resp.StatusCode, tok)
	} else {
		g.revokeToken(used.ClientID, tok.RefreshToken, "") // used, but no live grant left
	}

	g.clock.Advance(31 * day) // day 91
	if err := g.gw.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	status, body := g.authorizePage(idle.ClientID)
	if status != 400 || !strings.Contains(body, "Unknown application") {
		t.Errorf("the idle client at /authorize after 91 days: %d, want 400 Unknown application:\n%s", status, body)
	}
	resp, b := g.postForm(g.url+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {idle.ClientID}})
	if e := decode[map[string]string](t, b); resp.StatusCode != 401 || e["error"] != "invalid_client" {
		t.Errorf("the idle client at /token: %d %s, want 401 invalid_client", resp.StatusCode, b)
	}
	if _, err := g.store.GetClient(ctx, used.ClientID); err != nil {
		t.Errorf("the client used on day 60, on day 91: %v, want it kept", err)
	}
	resp, next := g.refresh(live.ClientID, liveTok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("the client with a live refresh token, on day 91: %d %+v, want 200", resp.StatusCode, next)
	}

	g.clock.Advance(60 * day) // day 151
	if err := g.gw.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := g.store.GetClient(ctx, used.ClientID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the client last used on day 60, on day 151: %v, want it deleted", err)
	}
	if resp, _ := g.refresh(live.ClientID, next.RefreshToken, nil); resp.StatusCode != 200 {
		t.Errorf("the client with a live refresh token, on day 151: %d, want 200", resp.StatusCode)
	}
	if status, body := g.authorizePage("static-app"); status != 200 || strings.Contains(body, "Unknown application") {
		t.Errorf("a pre-registered client after housekeeping: %d, want its consent page", status)
	}
}

// SEC-14: UnusedClientExpiry off keeps every client.
func TestSEC14_ClientExpiryOff(t *testing.T) {
	g := newGateway(t, func(c *mcpgate.Config) { c.UnusedClientExpiry = -1 })
	idle := g.register(nil)
	g.clock.Advance(1000 * day)
	if err := g.gw.Housekeeping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, body := g.authorizePage(idle.ClientID); status != 200 {
		t.Errorf("an idle client with expiry off: %d, want its consent page:\n%s", status, body)
	}
}
