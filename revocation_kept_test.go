package mcpgate_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// SEC-169: a revocation is remembered as long as any access token may
// live, whatever access_token_ttl is now: a token minted under 24 hours
// and revoked stays refused when, two hours later, a gateway on the same
// store starts with the lifetime cut to one hour (the operator's answer
// to a leak, or another replica during a rolling change). Fails before
// this change: the new gateway loaded the revocations of the last hour
// only, and accepted the revoked token for the rest of its day.
func TestSEC169_RevocationOutlivesAShorterLifetime(t *testing.T) {
	first := newGateway(t, func(c *mcpgateConfig) { c.AccessTokenTTL = 24 * time.Hour })
	reg, _, tok := first.fullFlow()
	if resp, _ := first.postForm(first.url+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {reg.ClientID}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d, want 200", resp.StatusCode)
	}
	if resp, _ := first.mcpInitialize(first.url, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked token: %d, want 401", resp.StatusCode)
	}
	later := first.clock.Now().Add(2 * time.Hour)
	second := newGateway(t, func(c *mcpgateConfig) {
		c.Store = first.store
		c.AccessTokenTTL = time.Hour
		c.PublicURL = first.url // the issuer and audience of the token
		c.Now = func() time.Time { return later }
	})
	if err := second.gw.Housekeeping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resp, body := second.mcpInitialize(second.url, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked 24-hour token, 2 hours later, at a gateway with a 1-hour lifetime: %d %s, want 401", resp.StatusCode, body)
	}
}

// SEC-169 with clocks apart: housekeeping on a replica whose clock runs
// ahead (by up to MaxClockSkew) keeps a revoked grant until every token
// of it has expired by any replica's clock. Fails before: a replica 5 s
// ahead deleted the revocation of a 24-hour token 5 s before it expired,
// and a replica that started then took the token.
func TestSEC169_RevocationKeptAcrossClockSkew(t *testing.T) {
	first := newGateway(t, func(c *mcpgateConfig) { c.AccessTokenTTL = 24 * time.Hour })
	reg, _, tok := first.fullFlow()
	if resp, _ := first.postForm(first.url+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {reg.ClientID}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d, want 200", resp.StatusCode)
	}
	expiry := first.clock.Now().Add(24 * time.Hour)
	at := func(clock time.Time) func(c *mcpgateConfig) {
		return func(c *mcpgateConfig) {
			c.Store, c.AccessTokenTTL, c.PublicURL = first.store, 24*time.Hour, first.url
			c.Now = func() time.Time { return clock }
		}
	}
	ahead := newGateway(t, at(expiry.Add(5*time.Second)))
	if err := ahead.gw.Housekeeping(t.Context()); err != nil {
		t.Fatal(err)
	}
	starting := newGateway(t, at(expiry.Add(-5*time.Second)))
	if resp, body := starting.mcpInitialize(starting.url, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked token 5 s before it expires, after housekeeping 5 s ahead: %d %.200s, want 401", resp.StatusCode, body)
	}
}
