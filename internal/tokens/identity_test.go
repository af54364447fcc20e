package tokens

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/identity"
)

func testCaller() *identity.Caller {
	return &identity.Caller{
		User:     identity.User{ID: "local:alice", Upstream: "local", Username: "alice", Email: "a@example.com", EmailVerified: true, Groups: []string{"dev"}},
		ClientID: "client-1", Scopes: []string{"mcp"}, Resource: resource, TokenID: "jti-1", ExpiresAt: t0.Add(time.Hour),
	}
}

// The identity token is verifiable with the published JWKS and carries the
// caller; its typ keeps it from passing as an access token (PASS-1).
func TestIdentityTokenVerifiesWithJWKS(t *testing.T) {
	ks, _ := newTestKeyset(t)
	now := t0
	m, err := NewIdentityMinter(ks, "http://127.0.0.1:3000/mcp", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Token(testCaller())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ks.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if typ := h.ExtraHeaders[jose.HeaderType]; typ != TypIdentityToken {
		t.Fatalf("typ %v, want %s", typ, TypIdentityToken)
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS, want the signing key there", h.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	want := map[string]any{"iss": issuer, "sub": "local:alice", "aud": "http://127.0.0.1:3000/mcp", "client_id": "client-1",
		"email": "a@example.com", "preferred_username": "alice", "scope": "mcp", "iat": float64(t0.Unix()), "exp": float64(t0.Add(IdentityTokenTTL).Unix())}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %v, want %v", k, c[k], v)
		}
	}
	if g, _ := c["groups"].([]any); len(g) != 1 || g[0] != "dev" {
		t.Errorf("groups = %v, want [dev]", c["groups"])
	}

	// PASS-1: the gateway's verifier refuses it as an access token, at any audience.
	v := at(ks, t0)
	for _, aud := range []string{resource, "http://127.0.0.1:3000/mcp"} {
		t.Run(aud, func(t *testing.T) {
			got, err := v.Verify(tok, issuer, aud)
			wantInvalid(t, got, err)
		})
	}
}

func TestIdentityTokenReusedThenRenewed(t *testing.T) {
	ks, _ := newTestKeyset(t)
	now := t0
	m, _ := NewIdentityMinter(ks, "https://backend.example/mcp", func() time.Time { return now })
	c := testCaller()
	a, _ := m.Token(c)
	now = now.Add(IdentityTokenTTL/2 - time.Second)
	if b, _ := m.Token(c); b != a {
		t.Fatal("a token within the first half of its life was not reused")
	}
	now = now.Add(2 * time.Second)
	if b, _ := m.Token(c); b == a {
		t.Fatal("a token past half its life was reused")
	}
	other := testCaller()
	other.TokenID = "jti-2"
	if b, _ := m.Token(other); b == a {
		t.Fatal("another access token got the same identity token")
	}
}

// A cached identity token is reused only for the caller it names: a
// caller of the same token id but another client, user or scopes (a
// session ended as its opener, SEC-35) gets a token of its own, and the
// first caller after it one that names the first caller again.
func TestIdentityTokenReusedOnlyForItsCaller(t *testing.T) {
	ks, _ := newTestKeyset(t)
	m, _ := NewIdentityMinter(ks, "https://backend.example/mcp", func() time.Time { return t0 })
	first, _ := m.Token(testCaller())
	for name, change := range map[string]func(*identity.Caller){
		"another client": func(c *identity.Caller) { c.ClientID = "client-2" },
		"another user":   func(c *identity.Caller) { c.User.ID = "local:bob" },
		"other scopes":   func(c *identity.Caller) { c.Scopes = []string{"mcp", "admin"} },
	} {
		c := testCaller()
		change(c)
		tok, err := m.Token(c)
		if err != nil || tok == first {
			t.Errorf("%s, same token id: %v, the first caller's token reused", name, err)
		}
		_, payload, _ := segments(t, tok)
		var claims identityClaims
		if err := json.Unmarshal(payload, &claims); err != nil || claims.ClientID != c.ClientID || claims.Subject != c.User.ID {
			t.Errorf("%s: claims %+v, %v; want client %s, subject %s", name, claims, err, c.ClientID, c.User.ID)
		}
	}
	again, _ := m.Token(testCaller())
	_, payload, _ := segments(t, again)
	var claims identityClaims
	if err := json.Unmarshal(payload, &claims); err != nil || claims.ClientID != "client-1" || claims.Subject != "local:alice" || claims.Scope != "mcp" {
		t.Errorf("the first caller after the others: claims %+v, %v; want client-1, local:alice, mcp", claims, err)
	}
}

func TestIdentityTokenNeverOutlivesTheAccessToken(t *testing.T) {
	ks, _ := newTestKeyset(t)
	m, _ := NewIdentityMinter(ks, "https://backend.example/mcp", fixedNow(t0))
	c := testCaller()
	c.ExpiresAt = t0.Add(10 * time.Second)
	tok, err := m.Token(c)
	if err != nil {
		t.Fatal(err)
	}
	_, payload, _ := segments(t, tok)
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["exp"] != float64(t0.Add(10*time.Second).Unix()) {
		t.Fatalf("exp = %v, want %d (the access token's expiry, not later)", claims["exp"], t0.Add(10*time.Second).Unix())
	}
	c.ExpiresAt = t0
	c.TokenID = "expired"
	if _, err := m.Token(c); err == nil {
		t.Fatal("identity token minted for an expired access token")
	}
	c.ExpiresAt = t0.Add(time.Hour)
	c.Resource = ""
	c.TokenID = "no-resource"
	if _, err := m.Token(c); err == nil {
		t.Fatal("identity token minted without an issuer")
	}
}

func TestIdentityTokenLeavesUnverifiedEmailOut(t *testing.T) {
	ks, _ := newTestKeyset(t)
	m, _ := NewIdentityMinter(ks, "https://backend.example/mcp", fixedNow(t0))
	c := testCaller()
	c.User.EmailVerified = false
	tok, _ := m.Token(c)
	_, payload, _ := segments(t, tok)
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if _, ok := claims["email"]; ok {
		t.Fatalf("unverified email sent: %s, want no email claim", payload)
	}
}
